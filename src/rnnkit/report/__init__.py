"""What a run reports: the metrics and their tables (metrics, spans, tables) and its plots."""
