"""Tools for developers and operators, not used by the running services: tiny random models of
the paper's architectures (`tiny_models`, the `tiny` preset and the tests), synthetic videos with
known scene cuts (`synthetic_video`), and fetching real weights into a model cache (`model_fetch`,
`a100m models fetch` and the chart's Job)."""
