from fault_targets import BROKEN as TARGET  # noqa: F401
