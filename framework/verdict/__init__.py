"""Deciding between samplers: the verdict of one run (`ranking`: which metrics may rank and the ranks they
give) and the comparison of two runs for CI (`compare`)."""
