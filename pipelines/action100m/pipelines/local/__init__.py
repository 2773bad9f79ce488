"""`a100m run`: the main job on one machine, from the inputs to the dataset.

- `context`: what a run settles before any service starts (inputs, roots, store, presets), one value;
- `presets`: the `tiny`, `single-gpu` and `paper` models and options;
- `preflight`: this machine's GPUs, tokens and disk, checked before anything starts;
- `schedule`: all services at once or stage by stage, from the memory plan;
- `services` and `supervisor`: the services on loopback, started, watched, restarted, stopped;
- `record`: the run's record, so a rerun with nothing to do starts nothing;
- `kfp_driver`: the DAG through kfp.local; `stagewise`: the executor stage by stage;
- `progress`: counts read from the store while the run goes; `run`: `run_main`, all of the above.
"""
