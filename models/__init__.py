"""Sequence models built on tinygraph: recurrent cells as graph templates, recurrent
layers that unroll them, and BPTT tools."""
from .bptt import (
    Contribution,
    detach_state,
    grad_contributions,
    grad_norm,
    grad_norms_through_time,
    jacobian_norms,
    step_outputs,
    train_step,
    truncated_bptt,
)
from .drawing import draw_bptt_sum, draw_truncated_bptt
from .gru_cell import GRUCell
from .lstm_cell import LSTMCell
from .recurrent import GRU, LSTM, RNN, Recurrent, masked_unroll
from .rnn_cell import RNNCell

__all__ = [
    "RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "Recurrent",
    "truncated_bptt", "train_step", "detach_state", "grad_norm", "step_outputs",
    "grad_norms_through_time", "jacobian_norms", "grad_contributions", "Contribution",
    "draw_bptt_sum", "draw_truncated_bptt",
]
from .language_model import LanguageModel
from .classifier import SequenceClassifier
from .tagger import SequenceTagger
from .seq2seq import Seq2Seq
from .attention import AdditiveAttention, Attention, DotAttention
from .fit import fit, load_checkpoint
from .history import History
from .interop import from_torch, to_torch
from . import tasks

__all__ += ["masked_unroll", "LanguageModel", "SequenceClassifier", "SequenceTagger", "Seq2Seq", "Attention",
            "DotAttention", "AdditiveAttention", "fit", "History", "load_checkpoint", "to_torch", "from_torch", "tasks"]
