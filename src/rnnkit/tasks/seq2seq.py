"""Sequence to sequence: an encoder reads the source, an attention decoder writes the target one
token at a time (Bahdanau et al. 2015; Luong et al. 2015, whose decoder this is).

    encoder    h_1..h_S = BiRNN(E_src x_1..x_S)               h_j = [→h_j; ←h_j] (H), packed by lengths
    bridge     s_0 = tanh(W_b [→h_S; ←h_1] + b_b)              for every layer (and the LSTM's cell state:
                                                               one W_b, b_b per part of the state)
    decoder    s_t = RNN(s_{t-1}, [E_tgt y_{t-1}; h̃_{t-1}])    h̃_{t-1} only with input feeding, h̃_0 = 0
    attention  α_t = softmax(score(s_t, h_1..h_S))             masked over source padding (nn/attention.py)
               c_t = Σ_j α_tj h_j
               h̃_t = tanh(W_c [c_t; s_t])                     the attentional state
    output     ŷ_t = softmax(V h̃_t + c)
    loss       L = -Σ_t log ŷ_t[y_t]     over the true target steps y_1 .. y_m, <eos>; never padding

A bidirectional encoder runs H/2 units each way, so that h_j and s_t have the same size H (as
OpenNMT's brnn does) and the dot score is defined. The decoder is fed <sos> y_1 .. y_m.

Teacher forcing feeds the gold y_{t-1}. With a ratio r < 1 (training only), each sentence draws
at each step: the gold token with probability r, else the model's own previous prediction
argmax ŷ_{t-1} (scheduled sampling, Bengio et al. 2015). Without input feeding and with r = 1 the
decoder runs over the whole target at once (one packed RNN call, attention as one batched
product); otherwise step by step. Both compute the same thing (tests/test_seq2seq.py).
Greedy and beam search over this model are in tasks/decoding.py.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import MAX_LENGTH_RATIO, DecodeConfig, ModelConfig, Seq2SeqConfig
from rnnkit.data.batching import bucket_batches
from rnnkit.data.parallel import Pair, encode_pairs, is_header, make_pair_batch, read_pairs, split_tokens
from rnnkit.data.text import join_tokens
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError
from rnnkit.nn import Output
from rnnkit.nn.attention import Attention
from rnnkit.nn.cells import CELLS, state_map, state_parts
from rnnkit.nn.masks import lengths_mask
from rnnkit.nn.rnn import RNN
from rnnkit.report.metrics import format_generation_report, generation_scores
from rnnkit.run.training import Bucketed, TrainingModel
from rnnkit.tasks import explaining
from rnnkit.tasks.decoding import decoding, translate
from rnnkit.tasks.seq2seq_onnx import onnx_graph
from rnnkit.tasks.task import Task, make_encoder


@dataclass
class Memory:
    """What the decoder attends to. states (B, S, H) h_1..h_S, zero past each length;
    keys (B, S, A) the attention's precomputed part; mask (B, S) bool, True on real positions."""

    states: Tensor
    keys: Tensor
    mask: Tensor

    def select(self, rows: Tensor) -> Memory:
        """Rows `rows` (B',) of every tensor: to repeat each sentence for its beams."""
        return Memory(self.states[rows], self.keys[rows], self.mask[rows])


@dataclass
class DecoderState:
    """s (L, B, H) the decoder RNN's state, or (h, c) for LSTM; feed (B, H) h̃_{t-1} with input
    feeding, else None."""

    s: Tensor | tuple[Tensor, Tensor]
    feed: Tensor | None

    def select(self, rows: Tensor) -> DecoderState:
        """Rows `rows` (B',): beam search reorders the states after each step."""
        s = state_map(lambda x: x[:, rows], self.s)  # (L, B', H) each part
        return DecoderState(s, None if self.feed is None else self.feed[rows])


class Seq2Seq(nn.Module, TrainingModel):
    """An attention encoder-decoder. See the module docstring for the equations.

    loss(batch: PairBatch, reduction) -> (loss, number of target steps scored)
    encode(src (B, S), src_lengths (B,)) -> (Memory, DecoderState s_0)
    step(y (B,) previous tokens, DecoderState, Memory) -> h̃ (B, H), DecoderState, α (B, S)
    output(h̃ (..., H)) -> logits (..., target vocab_size)
    """

    def __init__(
        self, source_vocab_size: int, target_vocab_size: int, config: ModelConfig, task: Seq2SeqConfig, pad_id: int = 0
    ):
        super().__init__()
        H, E, dirs = config.hidden_size, config.input_embedding_dim, 2 if config.bidirectional else 1
        check_sizes(config)
        self.hidden_size, self.num_layers, self.dirs = H, config.num_layers, dirs
        self.dropout, self.spec = config.dropout, CELLS[config.cell]
        self.input_feeding, self.teacher_forcing = task.input_feeding, task.teacher_forcing
        self.label_smoothing = task.label_smoothing
        self.encoder = make_encoder(source_vocab_size, dataclasses.replace(config, hidden_size=H // dirs), pad_id)
        self.bridge = nn.ModuleList(nn.Linear(H, H) for _ in self.spec.state)  # W_b, b_b of each part of s_0
        self.target_embedding = nn.Embedding(target_vocab_size, E, padding_idx=pad_id)  # E_tgt
        self.decoder = RNN(
            E + (H if task.input_feeding else 0), H, cell=config.cell, activation=config.activation,
            num_layers=config.num_layers, dropout=config.dropout,
        )  # fmt: skip
        self.attention = Attention(H, H, task.attention)
        self.combine = nn.Linear(2 * H, H, bias=False)  # W_c
        self.output = Output(H, target_vocab_size)  # V, c

    # the encoder side
    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Memory, DecoderState]:
        states, final = self.encoder.encode(src, src_lengths)  # (B, S, H), (L*dirs, B, H/dirs)
        mask = lengths_mask(src_lengths, src.shape[1]).to(src.device)  # (B, S); src_lengths on the host
        memory = Memory(states, self.attention.keys(states), mask)
        finals = state_parts(final)  # (L*dirs, B, H/dirs) each part
        s0 = [torch.tanh(W_b(self._join_directions(f))) for W_b, f in zip(self.bridge, finals)]  # (L, B, H) each
        feed = states.new_zeros(src.shape[0], self.hidden_size) if self.input_feeding else None  # h̃_0 = 0
        return memory, DecoderState(self.spec.state_of(s0), feed)

    def _join_directions(self, final: Tensor) -> Tensor:
        """(L*dirs, B, H/dirs) in PyTorch's layer-major order -> (L, B, H): [→h_S; ←h_1] per layer."""
        L, B = self.num_layers, final.shape[1]
        return final.view(L, self.dirs, B, -1).permute(0, 2, 1, 3).reshape(L, B, self.hidden_size)

    # the decoder side
    def _embed(self, y: Tensor) -> Tensor:
        return F.dropout(self.target_embedding(y), self.dropout, self.training)  # (..., E)

    def attend(self, s: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """s (B, T, H) decoder states -> h̃ (B, T, H) attentional states, α (B, T, S)."""
        c, alpha = self.attention(s, memory.keys, memory.states, memory.mask)  # (B, T, H), (B, T, S)
        return torch.tanh(self.combine(torch.cat([c, s], dim=-1))), alpha  # h̃ = tanh(W_c [c; s])

    def step(self, y: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState, Tensor]:
        """One decoder step for the previous tokens y (B,): h̃_t (B, H), the new state, α_t (B, S)."""
        x = self._embed(y)  # (B, E)
        if state.feed is not None:
            x = torch.cat([x, state.feed], dim=-1)  # (B, E + H): input feeding
        ones = torch.ones(y.shape[0], dtype=torch.int64)  # lengths of one step, on the host
        s, s_state = self.decoder(x.unsqueeze(1), ones, state.s)  # (B, 1, H)
        h, alpha = self.attend(s, memory)  # (B, 1, H), (B, 1, S)
        h = h.squeeze(1)
        return h, DecoderState(s_state, h if self.input_feeding else None), alpha.squeeze(1)

    def attentional_states(self, memory: Memory, state: DecoderState, y_in: Tensor, lengths: Tensor):
        """Teacher-forced decoding of y_in (B, T) = <sos> y_1 .. (padded), lengths (B,):
        h̃ (B, T, H) and α (B, T, S). Sampled inputs replace gold ones only while training."""
        sampling = self.training and self.teacher_forcing < 1.0
        if not self.input_feeding and not sampling:  # every step at once
            s, _ = self.decoder(self._embed(y_in), lengths, state.s)  # (B, T, H), zero past each length
            return self.attend(s, memory)
        hs, alphas = [], []
        y = y_in[:, 0]  # (B,) <sos>
        for t in range(y_in.shape[1]):
            h, state, alpha = self.step(y, state, memory)
            hs.append(h)
            alphas.append(alpha)
            if t + 1 < y_in.shape[1]:
                y = y_in[:, t + 1]
                if sampling:
                    with torch.no_grad():
                        predicted = self.output(h).argmax(-1)  # (B,)
                    gold = torch.rand(y.shape, device=y.device) < self.teacher_forcing
                    y = torch.where(gold, y, predicted)
        return torch.stack(hs, dim=1), torch.stack(alphas, dim=1)  # (B, T, H), (B, T, S)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt: Tensor, tgt_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits (B, T, K) for tgt (B, T + 1) = <sos> y_1 .. y_m <eos> (padded),
        tgt_lengths (B,) = m + 2, and the attention α (B, T, S). Steps past m + 1 are padding."""
        memory, state = self.encode(src, src_lengths)
        h, alpha = self.attentional_states(memory, state, tgt[:, :-1], tgt_lengths - 1)
        return self.output(F.dropout(h, self.dropout, self.training)), alpha

    def loss(self, batch, reduction: str = "sequence") -> tuple[Tensor, int]:
        """Cross-entropy over the true target steps of a PairBatch (y_1 .. y_m and <eos>), summed
        and divided by the sentences ("sequence") or the steps ("token"); and the steps scored.
        Label smoothing applies while training only."""
        memory, state = self.encode(batch.src, batch.src_lengths)
        y_in, lengths = batch.tgt[:, :-1], batch.tgt_lengths - 1  # (B, T), (B,)
        h, _ = self.attentional_states(memory, state, y_in, lengths)  # (B, T, H)
        real = lengths_mask(lengths, y_in.shape[1]).to(h.device)  # (B, T): never padding
        logits = self.output(F.dropout(h[real], self.dropout, self.training))  # (N, K) the real steps only
        y = batch.tgt[:, 1:][real]  # (N,) y_1 .. y_m <eos> of every sentence
        epsilon = self.label_smoothing if self.training else 0.0
        total = F.cross_entropy(logits, y, reduction="sum", label_smoothing=epsilon)
        n = batch.num_scored
        return total / (max(n, 1) if reduction == "token" else batch.src.shape[0]), n


def timing_options(pairs: list[Pair]) -> dict:
    """An untrained decoder never says <eos> and runs to its longest output. Capped near the
    references' length (as a ratio of the sources'), it decodes about as long as a trained one."""
    ratio = sum(len(p.target) for p in pairs) / max(sum(len(p.source) for p in pairs), 1)
    return {"max_length_ratio": min(max(ratio, 0.1), MAX_LENGTH_RATIO)}


def write(model, probs: bool):
    """predict's output: one translation a line, a blank line for a blank one."""
    return lambda r, translation: f"{translation or ''}\n"


def rows(model, fmt: str, split) -> tuple:
    """A row's source side is translated; a source<TAB>target header is skipped as evaluate skips it."""
    return split, model.data_config.text_field, model.data_config.label_field, is_header


def check_sizes(config: ModelConfig) -> None:
    """The sizes a Seq2Seq needs: a learned embedding, and an even H for a bidirectional encoder."""
    if config.input_embedding_dim == 0:
        raise UserError("seq2seq needs learned embeddings; give --embed N (N > 0)")
    H = config.hidden_size
    if config.bidirectional and H % 2:
        raise UserError(f"a bidirectional encoder runs hidden_size/2 units each way; give an even --hidden, not {H}")


# ---------------------------------------------------------------------------------------------
# The task: pairs in, translations out, scored by BLEU


def read(data, configs: dict) -> list[Pair]:
    """Pairs from a `source<TAB>target` file or a (source file, target file) pair."""
    return read_pairs(data, configs["seq2seq"].level, configs["data"].format)


def vocabularies(pairs: list[Pair], configs: dict, source) -> dict:
    data = configs["data"]
    options = dict(lowercase=data.lowercase, min_freq=data.min_freq, max_size=data.max_size)
    source, target = Vocab(**options).fit(p.source for p in pairs), Vocab(**options).fit(p.target for p in pairs)
    return {"source": source, "target": target}


def predict(model, pairs: list[Pair], **options) -> list[str]:
    """One translation per source, with the run's decoding unless `options` (DecodeConfig's) say otherwise."""
    level = model.data_config.level
    return [join_tokens(tokens, level) for tokens, _ in translate(model, pairs, decoding(model, **options))]


@torch.inference_mode()
def loss(model, pairs: list[Pair], batch_size: int = 256) -> float:
    """Teacher-forced cross-entropy in nats per target token (<eos> included)."""
    model.net.eval()
    data = encode_pairs(pairs, model.vocabs["source"], model.vocabs["target"])
    total, steps = 0.0, 0
    for rows in bucket_batches(data.lengths, batch_size):
        batch = make_pair_batch(data, rows, model.vocab.pad_id).to(model.device)
        value, n = model.net.loss(batch, "token")
        total, steps = total + float(value) * n, steps + n
    return total / max(steps, 1)


def evaluate(model, pairs: list[Pair], source: str, **options) -> dict:
    """BLEU and chrF of the translations of `pairs` against their targets (sacrebleu), with
    the teacher-forced loss and perplexity: the dict of `rnnkit evaluate --json`."""
    config = decoding(model, **options)
    hypotheses = predict(model, pairs, **dataclasses.asdict(config))
    level = model.data_config.level
    references = [join_tokens(p.target, level) for p in pairs]
    tokenize = config.bleu_tokenize or ("char" if level == "char" else "13a")
    scores = generation_scores(hypotheses, references, tokenize, lowercase=bool(model.data_config.lowercase))
    value = loss(model, pairs)
    return {
        "task": "seq2seq",
        "examples": len(pairs),
        "tokens": sum(len(p.target) for p in pairs),
        **scores,
        "loss": value,
        "perplexity": math.exp(min(value, 700.0)),  # an untrained model's loss must not overflow
        "decoding": {k: v for k, v in dataclasses.asdict(config).items() if k != "bleu_tokenize"},
    }


TASK = Task(
    "seq2seq",
    read=read,
    network=lambda vocabs, configs: Seq2Seq(
        len(vocabs["source"]), len(vocabs["target"]), configs["model"], configs["seq2seq"]
    ),
    # a bidirectional GRU with learned embeddings, the usual attention NMT baseline; the loss averaged
    # over target tokens, as fairseq and most NMT setups do
    defaults={
        "cell": "gru",
        "bidirectional": True,
        "embedding_dim": 256,
        "dropout": 0.3,
        "batch_size": 64,
        "loss": "token",
    },  # fmt: skip
    lowercase=False,  # the target is generated: keep its case unless asked
    sections={"seq2seq": Seq2SeqConfig, "decode": DecodeConfig},
    metric="bleu",
    dev_options={"beam": 1},  # greedy BLEU while training: cheap; metrics.json has the saved decoding
    vocabularies=vocabularies,
    vocab_names=("source", "target"),
    training_data=lambda sets, vocabs, configs: Bucketed(
        encode_pairs(sets["train"], vocabs["source"], vocabs["target"]), vocabs["source"].pad_id, make_pair_batch
    ),
    evaluate=evaluate,
    predict=predict,
    check=lambda configs: check_sizes(configs["model"]),
    steps=lambda pair: max(len(pair.source), len(pair.target)) + 2,
    example=Pair,
    split=split_tokens,
    parallel=True,
    explain=explaining.SEQ2SEQ,
    timing_options=timing_options,
    write=write,
    rows=rows,
    export=onnx_graph,  # the encoder and decoder-step graphs (tasks/seq2seq_onnx.py)
    serves=True,
    confusion=False,
    report=lambda report, title: format_generation_report(report, title).rstrip("\n"),
    describe=lambda pairs, vocabs: (
        f"{len(pairs)} train pairs, vocabulary {len(vocabs['source'])} source / {len(vocabs['target'])} target"
    ),
)
