"""Scaling laws: parameter/FLOP accounting, sweeps, power-law fits, plots and reports."""
