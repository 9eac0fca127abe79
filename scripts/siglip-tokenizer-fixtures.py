"""SigLIP tokenizer parity references, computed with Google's SentencePiece (Debian python3-sentencepiece).

The generated SigLIP model's tokenizer.json (a Unigram vocabulary with scores) is rebuilt as a
SentencePiece ModelProto (identity normaliser, no dummy prefix, as SiglipTokenizer.get_spm_processor
sets it) and every case is encoded as HF's slow SiglipTokenizer does: canonicalize_text (remove
string.punctuation, collapse whitespace, strip), lowercase (do_lower_case), prefix U+2581, SentencePiece
encode, append </s>. The TypeScript tokenizer (@huggingface/tokenizers over the tokenizer.json) must give
the same ids. Usage: python3 scripts/siglip-tokenizer-fixtures.py <model-dir> > test/fixtures/siglip/tokenizer-cases.jsonl
"""
import json, re, string, sys
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

CASES = [
    "a photo of a red thing", "A Photo of a RED, striped thing!", "  crimson   and   navy  ",
    "a photo of a cyan-ish dog", "the checkered art; (a drawing)", "xyz 42 red", "emerald!!!",
    "a photo of a " + " ".join(["big"] * 70), "Ünïcode café red", "",
]

def main(model_dir):
    tj = json.load(open(f"{model_dir}/tokenizer.json"))
    vocab = tj["model"]["vocab"]
    m = pb.ModelProto()
    for piece, score in vocab:
        p = m.pieces.add()
        p.piece, p.score = piece, score
        p.type = p.UNKNOWN if piece == "<unk>" else p.CONTROL if piece in ("<pad>", "</s>") else p.NORMAL
    m.trainer_spec.model_type = pb.TrainerSpec.UNIGRAM
    m.trainer_spec.unk_id, m.trainer_spec.pad_id, m.trainer_spec.eos_id, m.trainer_spec.bos_id = 2, 0, 1, -1
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = False
    m.normalizer_spec.remove_extra_whitespaces = False
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(m.SerializeToString())
    for text in CASES:
        t = text.translate(str.maketrans("", "", string.punctuation))
        t = re.sub(r"\s+", " ", t).strip().lower()
        ids = sp.encode("\u2581" + t.replace(" ", "\u2581")) if t else []
        ids = ids[:63] + [1]
        print(json.dumps({"text": text, "ids": ids}, ensure_ascii=False))

main(sys.argv[1])
