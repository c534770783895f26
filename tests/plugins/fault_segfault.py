from fault_targets import SEGFAULT as TARGET  # noqa: F401
