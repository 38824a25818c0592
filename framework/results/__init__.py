"""The results document (results.json): its declared shape and version (`schema`) and how a run writes
it (`document`: provenance, aggregates over seeds, atomic writes)."""
