from fault_targets import SLEEPY as TARGET  # noqa: F401
