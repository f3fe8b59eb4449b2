"""Neural-network building blocks: Modules, layers and functional losses."""
from .module import Module, ModuleList, Parameter
from . import functional, init
from .layers import Dropout, Embedding, Linear, ReLU, Sequential, Sigmoid, Tanh

__all__ = [
    "Module", "ModuleList", "Parameter",
    "Linear", "Embedding", "Dropout", "Sequential", "Tanh", "ReLU", "Sigmoid", "functional", "init",
]
