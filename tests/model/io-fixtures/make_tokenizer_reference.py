"""Reference BERT WordPiece tokenisation, written independently of the TypeScript code under test.

Run: /usr/bin/python3 tests/model/io-fixtures/make_tokenizer_reference.py (standard library only).
It re-states the algorithm of BERT's BasicTokenizer + WordpieceTokenizer (clean text, pad CJK
ideographs, lowercase + strip accents when do_lower_case, split on whitespace and punctuation,
greedy longest-match-first word pieces with "##", [UNK] for a word that cannot be pieced) and writes,
for an uncased and a cased folder under tokenizer/:
  vocab.txt, tokenizer_config.json, tokenizer.json (serialised the way HF tokenizers saves a
  BertTokenizerFast), and reference.json: texts and their ids with [CLS]/[SEP] and no truncation.
"""
import json
import pathlib
import unicodedata

HERE = pathlib.Path(__file__).resolve().parent / "tokenizer"

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = """the of and in with to a is was were by for patients patient cell cells protein proteins gene genes
expression tumor tumour cancer therapy treatment dose doses mg kg blood pressure heart failure acute chronic
kidney liver injury receptor receptors inhibitor inhibitors binding binds mediated pathway signaling
apoptosis p53 il tnf covid sars cov 19 2 6 alpha beta blocker blockers na k atpase utr mrna dna rna
clinical trial randomized placebo controlled study significant increase decrease reduced risk""".split()
SUFFIXES = "##s ##ed ##ing ##ly ##ase ##itis ##oma ##emia ##ic ##al ##ation ##ize ##ized ##ine ##ol".split()
PREFIXES = "hyper hypo anti non pre post immuno cardio neuro onco".split()
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
CASED_WORDS = "The Patients TNF IL COVID SARS CoV DNA RNA Na K ATPase UTR".split()
PUNCT = list(".,;:()[]-+/'%=<>α-β²⁺")
CHARS = ["é", "ü", "中", "文"]


def vocab_for(cased):
    tokens = SPECIALS + WORDS + SUFFIXES + PREFIXES + LETTERS + ["##" + c for c in LETTERS]
    tokens += [str(d) for d in range(10)] + ["##" + str(d) for d in range(10)] + PUNCT + CHARS
    if cased:
        tokens += CASED_WORDS + [c.upper() for c in LETTERS]
    seen, out = set(), []
    for t in tokens:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


TEXTS = [
    "The p53 protein binds DNA and induces apoptosis.",
    "Patients with chronic kidney disease were randomized to placebo.",
    "TNF-α and IL-6 signaling in hypertensive heart failure.",
    "Anti-PD-1 immunotherapy (pembrolizumab, 200 mg) reduced tumour growth.",
    "Na+/K+-ATPase inhibitors increased intracellular Ca²⁺.",
    "SARS-CoV-2 mRNA binds the 5'-UTR; COVID-19 risk was 12.5%.",
    "Café-au-lait spots: Müller's cells, naïve T cells.",
    "β-blockers lowered blood pressure >10 mmHg vs. controls",
    "中文 text with\ttabs\nand newlines  and   spaces",
    "supercalifragilisticexpialidociousnesslessnessfulnessxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx and more",
    "",
    "[MASK] cells express the [UNK] gene",
]


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def normalise(text, lowercase):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        if ch in "\t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue
        elif is_cjk(cp):
            out.append(" " + ch + " ")
        else:
            out.append(ch)
    text = "".join(out)
    if lowercase:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn").lower()
    return text


def pre_tokenise(text):
    words = []
    for chunk in text.split():
        current = ""
        for ch in chunk:
            if is_punct(ch):
                if current:
                    words.append(current)
                    current = ""
                words.append(ch)
            else:
                current += ch
        if current:
            words.append(current)
    return words


def word_pieces(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        piece = None
        while start < end:
            candidate = word[start:end] if start == 0 else "##" + word[start:end]
            if candidate in vocab:
                piece = candidate
                break
            end -= 1
        if piece is None:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def encode(text, vocab, lowercase):
    ids = [vocab["[CLS]"]]
    # Special tokens written in the text are kept whole, as HF tokenizers does for added tokens.
    for part in split_specials(text):
        if part in SPECIALS:
            ids.append(vocab[part])
            continue
        for word in pre_tokenise(normalise(part, lowercase)):
            ids += [vocab[p] for p in word_pieces(word, vocab)]
    return ids + [vocab["[SEP]"]]


def split_specials(text):
    parts, i = [], 0
    while i < len(text):
        hit = next((s for s in SPECIALS if text.startswith(s, i)), None)
        if hit:
            parts.append(hit)
            i += len(hit)
        else:
            j = i
            while j < len(text) and not any(text.startswith(s, j) for s in SPECIALS):
                j += 1
            parts.append(text[i:j])
            i = j
    return parts


def tokenizer_json(vocab, lowercase):
    """The layout HF tokenizers serialises for BertTokenizerFast."""
    special = lambda t: {"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                         "normalized": False, "special": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(t) for t in SPECIALS],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]} for t in ("[CLS]", "[SEP]")},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }


def main():
    for name, cased in (("uncased", False), ("cased", True)):
        write_folder(name, cased)


def write_folder(name, cased):
    tokens = vocab_for(cased)
    vocab = {t: i for i, t in enumerate(tokens)}
    out = HERE / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("".join(t + "\n" for t in tokens))
    (out / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": not cased, "tokenizer_class": "BertTokenizer"}, indent=2) + "\n")
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json(vocab, not cased), ensure_ascii=False, indent=2) + "\n")
    reference = {"texts": TEXTS, "ids": [encode(t, vocab, not cased) for t in TEXTS]}
    (out / "reference.json").write_text(json.dumps(reference, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
