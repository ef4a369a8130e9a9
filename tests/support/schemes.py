"""Arguments for the registered schemes that have required ones, as the audit's tests build them
(tests/auditing/test_inference.py, test_sweep.py). A scheme registered later with required arguments
not listed here is reported by test_infer's test_zoo_covers_the_framework_namespaces."""

REQUIRED_ARGS: dict[str, dict[str, object]] = {
    "constant": {"val": 0.3},
    "jax.constant": {"value": 0.3},
    "sparse": {"sparsity": 0.1},
    "jax.variance_scaling": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"},
    "fanin.gate_constant": {"values": [0.0, 1.0, 0.0, 0.0]},
    "fanin.gate_uniform": {"bounds": [0.1, 0.25, 0.1, 0.05]},
    "fanin.padded_normal": {"padding_idx": 0, "std": 0.5},
    "fanin.zeros_after_uniform": {"a": -0.1, "b": 0.1},
}
