"""Plumbing with no benchmark knowledge: safe file output (`io`), the cache folder (`paths`), hashing,
the console, number checks, device and precision choice (`device`) and CPU threads (`threads`)."""
