"""Plotting helpers used by the chapters, one module per topic."""
