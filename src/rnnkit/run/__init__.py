"""The run's life: the training loop (training), the run folder (folder), data-parallel
processes (distributed), the size check (sizing) and files written whole (files)."""
