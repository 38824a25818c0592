"""One benchmark run, stage by stage: the settings (`config`, `suite_file`, `suite`) resolved into a frozen
`plan`, the real side prepared once (`setup`, `preflight`, `reference_sets`), the (sampler, seed) `cells`
with their image path (`encoding`, `image_pipeline`, `batching`), and the `runner` that hands cells to an
executor and writes the results document. The Python API: `aebench.run.runner.run_benchmark(config)`."""
