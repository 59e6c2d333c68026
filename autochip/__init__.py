"""autochip: hardware-aware DNN chip design, from a PyTorch model to verified Verilog."""

__version__ = "0.1.0"
__all__ = ["__version__"]
