"""What a run computes once and keeps under the cache folder: trained models (`models`), encoded latents
and their statistics (`latents`), real-image features (`features`). Every entry is checked (checksum or
record) before it is used; a damaged one is recomputed, never trusted."""
