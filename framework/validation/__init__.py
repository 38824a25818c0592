"""Known-answer validation of metrics (`aebench validate`, `aebench run --validate`).

Real latents are degraded step by step in a known direction (`ladders`), every selected metric scores
each step through its normal `Metric.compute` (`run`), and the rank correlation of each metric's
"badness" with the step decides whether the metric can be trusted for that failure mode (`verdict`).
"""
