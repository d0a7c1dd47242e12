"""rnnkit: recurrent neural networks for sequences."""
