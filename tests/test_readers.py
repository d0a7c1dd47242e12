"""Readers: every format, every user-facing error with its `path:line:` prefix."""

from __future__ import annotations

import re

import pytest

from rnnkit.data.readers import (
    FORMATS,
    Example,
    detect_format,
    read_classification,
    read_tagging,
    tokenize,
)
from rnnkit.errors import DataError, UserError


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def at(path, line: int | None = None) -> str:
    """The regex for a message's location prefix."""
    return re.escape(f"{path}:{line}: " if line is not None else f"{path}: ")


def conllu_word(i, form: str, upos: str, xpos: str = "_") -> str:
    return f"{i}\t{form}\t{form.lower()}\t{upos}\t{xpos}\t_\t0\troot\t_\t_"


CONLLU = (
    "\n".join(
        [
            "# sent_id = 1",
            "# text = Don't go.",
            "1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_",
            conllu_word(1, "Do", "AUX", "VBP"),
            conllu_word(2, "n't", "PART", "RB"),
            conllu_word(3, "go", "VERB", "VB"),
            conllu_word(3.1, "went", "VERB", "VBD"),
            conllu_word(4, ".", "PUNCT", "."),
            "",
            "# sent_id = 2",
            conllu_word(1, "Hi", "INTJ", "UH"),
            "",
        ]
    )
    + "\n"
)

CONLL = (
    "\n".join(
        [
            "-DOCSTART- -X- -X- O",
            "",
            "EU NNP B-NP B-ORG",
            "rejects VBZ B-VP O",
            "",
            "Peter NNP B-NP B-PER",
            "Blackburn NNP I-NP I-PER",
            "",
        ]
    )
    + "\n"
)


# --- tokenize ---------------------------------------------------------------------------------


def test_tokenize_splits_negations_as_ptb_does():
    assert tokenize("doesn't") == ["does", "n't"]
    assert tokenize("can't won't") == ["ca", "n't", "wo", "n't"]


def test_tokenize_splits_clitics_off_their_words():
    text = "it's they're I'm we'll you've he'd"
    assert tokenize(text) == ["it", "'s", "they", "'re", "I", "'m", "we", "'ll", "you", "'ve", "he", "'d"]


def test_tokenize_splits_punctuation_off_words():
    assert tokenize('Great, "fun" film!') == ["Great", ",", '"', "fun", '"', "film", "!"]


def test_tokenize_keeps_numbers_with_separators_whole():
    assert tokenize("$3.50 for 1,000 at 10:30.") == ["$", "3.50", "for", "1,000", "at", "10:30", "."]


def test_tokenize_keeps_hyphenated_words_whole():
    assert tokenize("a well-made, state-of-the-art film") == ["a", "well-made", ",", "state-of-the-art", "film"]


def test_tokenize_keeps_inner_apostrophes_initials_and_abbreviations():
    assert tokenize("Mr. O'Neill left the U.S. at 5 o'clock") == [
        "Mr.",
        "O'Neill",
        "left",
        "the",
        "U.S.",
        "at",
        "5",
        "o'clock",
    ]


def test_tokenize_treats_the_typographic_apostrophe_like_the_ascii_one():
    assert tokenize("doesn’t it’s") == ["does", "n’t", "it", "’s"]


@pytest.mark.parametrize(
    "text",
    [
        "it 's a does n't - well-made film .",
        "they presume their audience wo n't sit still , however entertainingly presented",
        "`` the '70s '' -lrb- a comedy\\/drama -rrb- ... i 'm sure",
        "mr. <unk> is chairman of <unk> n.v. the dutch publishing group",
    ],
)
def test_tokenize_leaves_already_tokenized_text_as_it_is(text):
    assert tokenize(text) == text.split()


# --- detect_format ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.tsv", "tsv"),
        ("a.csv", "csv"),
        ("a.jsonl", "jsonl"),
        ("a.json", "jsonl"),
        ("a.conllu", "conllu"),
        ("a.conll", "conll"),
        ("A.TSV", "tsv"),
    ],
)
def test_detect_format_reads_the_suffix(name, expected):
    assert detect_format(name) == expected


def test_detect_format_reads_txt_as_conll_for_tagging_and_as_text_otherwise():
    assert detect_format("train.txt", txt="conll") == "conll"
    assert detect_format("train.txt") == "text"


def test_detect_format_prefers_an_explicit_format_to_the_suffix():
    assert detect_format("data.txt", format="tsv") == "tsv"


def test_detect_format_rejects_an_unknown_suffix_and_suggests_format():
    with pytest.raises(
        UserError,
        match=re.escape(
            "data.xml: cannot tell the file format from "
            "the suffix '.xml'; pass --format with one of " + ", ".join(FORMATS)
        ),
    ):
        detect_format("data.xml")


def test_detect_format_rejects_an_unknown_explicit_format_and_lists_the_formats():
    with pytest.raises(UserError, match="unknown format 'xml'; choose one of tsv, csv, jsonl"):
        detect_format("data.tsv", format="xml")


# --- errors common to every file --------------------------------------------------------------


def test_a_missing_file_is_a_data_error(tmp_path):
    path = tmp_path / "missing.tsv"
    with pytest.raises(DataError, match=at(path) + "no such file"):
        read_classification(path)


def test_a_missing_file_without_a_suffix_is_reported_as_missing(tmp_path):
    path = tmp_path / "missing"
    with pytest.raises(DataError, match=at(path) + "no such file"):
        read_tagging(path)


def test_a_directory_is_a_data_error_for_tagging(tmp_path):  # classification reads one as a class folder
    path = tmp_path / "dir"
    path.mkdir()
    with pytest.raises(DataError, match=at(path) + "expected a file, found a directory"):
        read_tagging(path)


def test_a_non_utf8_byte_is_reported_at_its_line(tmp_path):
    path = write(tmp_path, "latin.tsv", b"good movie\t1\nbad \xff\t0\n")
    with pytest.raises(DataError, match=at(path, 2) + "expected UTF-8 text, found byte 0xff"):
        read_classification(path)


def test_an_empty_file_has_no_examples(tmp_path):
    path = write(tmp_path, "empty.tsv", "")
    with pytest.raises(DataError, match=at(path) + r"expected at least one example, found none"):
        read_classification(path)


def test_crlf_line_endings_are_read_like_lf(tmp_path):
    crlf = write(tmp_path, "crlf.conllu", CONLLU.replace("\n", "\r\n"))
    lf = write(tmp_path, "lf.conllu", CONLLU)
    assert read_tagging(crlf) == read_tagging(lf)


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    path = write(tmp_path, "bom.tsv", "\ufefftext\tlabel\ngood\t1\n")
    assert read_classification(path) == [Example(("good",), label="1", line=2)]


# --- tsv --------------------------------------------------------------------------------------


def test_tsv_reads_tokenized_text_and_a_label_per_line(tmp_path):
    path = write(tmp_path, "a.tsv", "It's great!\tpos\nboring\tneg\n")
    assert read_classification(path) == [
        Example(("It", "'s", "great", "!"), label="pos", line=1),
        Example(("boring",), label="neg", line=2),
    ]


@pytest.mark.parametrize("header", ["sentence\tlabel", "text\tLabels", "x\tCLASS", "s\ty", "review\tSentiment"])
def test_tsv_skips_a_header_whose_last_field_names_the_label(tmp_path, header):
    path = write(tmp_path, "a.tsv", f"{header}\ngood\t1\n")
    assert read_classification(path) == [Example(("good",), label="1", line=2)]


def test_tsv_header_may_use_the_label_field_name(tmp_path):
    path = write(tmp_path, "a.tsv", "text\tstars\ngood\t5\n")
    assert [ex.label for ex in read_classification(path, label_field="stars")] == ["5"]


def test_tsv_without_a_header_keeps_its_first_line(tmp_path):
    path = write(tmp_path, "a.tsv", "good\t1\nbad\t0\n")
    assert [ex.label for ex in read_classification(path)] == ["1", "0"]


def test_tsv_with_only_a_header_has_no_examples(tmp_path):
    path = write(tmp_path, "a.tsv", "sentence\tlabel\n")
    with pytest.raises(DataError, match=at(path) + "expected at least one example, found only a header"):
        read_classification(path)


def test_tsv_skips_blank_lines(tmp_path):
    path = write(tmp_path, "a.tsv", "good\t1\n\n  \nbad\t0\n")
    assert [ex.line for ex in read_classification(path)] == [1, 4]


def test_tsv_does_not_process_quotes(tmp_path):
    path = write(tmp_path, "a.tsv", '"quoted, text\t1\n')
    assert read_classification(path)[0].tokens == ('"', "quoted", ",", "text")


@pytest.mark.parametrize("line, n", [("a\tb\tc", 3), ("no tab here", 1)])
def test_tsv_with_the_wrong_number_of_columns_names_the_line(tmp_path, line, n):
    path = write(tmp_path, "bad.tsv", f"good\t1\n{line}\n")
    with pytest.raises(
        DataError, match=at(path, 2) + re.escape(f"expected 2 tab-separated columns (text, label), found {n}")
    ):
        read_classification(path)


def test_tsv_with_empty_text_is_an_error(tmp_path):
    path = write(tmp_path, "a.tsv", "good\t1\n \t0\n")
    with pytest.raises(DataError, match=at(path, 2) + "expected text in column 1, found an empty field"):
        read_classification(path)


def test_tsv_with_an_empty_label_is_an_error(tmp_path):
    path = write(tmp_path, "a.tsv", "good\t\n")
    with pytest.raises(DataError, match=at(path, 1) + "expected a label in column 2, found an empty field"):
        read_classification(path)


# --- csv --------------------------------------------------------------------------------------


def test_csv_reads_the_text_and_label_columns_with_quotes(tmp_path):
    path = write(tmp_path, "a.csv", 'id,text,label\n7,"good, really",1\n8,bad,0\n')
    assert read_classification(path) == [
        Example(("good", ",", "really"), label="1", line=2),
        Example(("bad",), label="0", line=3),
    ]


def test_csv_reads_other_columns_when_asked(tmp_path):
    path = write(tmp_path, "a.csv", "review,stars\ngood,5\n")
    examples = read_classification(path, text_field="review", label_field="stars")
    assert examples == [Example(("good",), label="5", line=2)]


def test_csv_lines_count_rows_that_span_lines(tmp_path):
    path = write(tmp_path, "a.csv", 'text,label\n"two\nlines",1\nnext,0\n')
    assert [(ex.tokens, ex.line) for ex in read_classification(path)] == [(("two", "lines"), 2), (("next",), 4)]


def test_csv_without_the_text_column_names_the_columns_and_the_option(tmp_path):
    path = write(tmp_path, "a.csv", "review,label\ngood,1\n")
    with pytest.raises(
        DataError,
        match=at(path, 1)
        + re.escape(
            "expected a column named 'text' in the header, found columns ['review', 'label']; "
            "choose another with --text-field NAME"
        ),
    ):
        read_classification(path)


def test_csv_without_the_label_column_suggests_label_field(tmp_path):
    path = write(tmp_path, "a.csv", "text,stars\ngood,1\n")
    with pytest.raises(DataError, match=at(path, 1) + ".*--label-field NAME"):
        read_classification(path)


def test_csv_row_with_a_different_field_count_than_the_header_is_an_error(tmp_path):
    path = write(tmp_path, "a.csv", "text,label\ngood,1\nbad,0,extra\n")
    with pytest.raises(DataError, match=at(path, 3) + "expected 2 comma-separated fields as in the header, found 3"):
        read_classification(path)


def test_csv_with_only_a_header_has_no_examples(tmp_path):
    path = write(tmp_path, "a.csv", "text,label\n")
    with pytest.raises(DataError, match=at(path) + "expected at least one example, found only a header"):
        read_classification(path)


# --- jsonl ------------------------------------------------------------------------------------


def test_jsonl_reads_text_and_casts_labels_to_strings(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"text": "so good!", "label": 1}\n\n{"text": "meh", "label": "neg"}\n')
    assert read_classification(path) == [
        Example(("so", "good", "!"), label="1", line=1),
        Example(("meh",), label="neg", line=3),
    ]


def test_jsonl_takes_a_list_of_tokens_as_it_is(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"text": ["do", "n\'t", "!"], "label": 0}\n')
    assert read_classification(path)[0].tokens == ("do", "n't", "!")


def test_jsonl_with_invalid_json_names_the_line_and_the_problem(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"text": "a", "label": 1}\n{"text": "b", label: 0}\n')
    with pytest.raises(
        DataError,
        match=at(path, 2) + r"expected one JSON object per line "
        r"\(JSON Lines\), found invalid JSON: "
        "Expecting property name",
    ):
        read_classification(path)


def test_jsonl_with_a_line_that_is_not_an_object_is_an_error(tmp_path):
    path = write(tmp_path, "a.json", '[{"text": "a", "label": 1}]\n')
    with pytest.raises(
        DataError,
        match=at(path, 1) + r"expected one JSON object per line "
        r"\(JSON Lines\), found list",
    ):
        read_classification(path)


def test_jsonl_missing_key_names_the_key_and_the_keys_found(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"sentence": "a", "label": 1}\n')
    with pytest.raises(
        DataError, match=at(path, 1) + re.escape("expected a key 'text', found keys ['sentence', 'label']")
    ):
        read_classification(path)


def test_jsonl_tagging_reads_tokens_and_tags(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"tokens": ["Hi", "!"], "tags": ["INTJ", "PUNCT"]}\n')
    assert read_tagging(path) == [Example(("Hi", "!"), tags=("INTJ", "PUNCT"), line=1)]


def test_jsonl_tagging_reads_another_tags_key_named_by_column(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"tokens": ["Hi"], "ner_tags": [0]}\n')
    assert read_tagging(path, column="ner_tags")[0].tags == ("0",)


def test_jsonl_tagging_without_tokens_names_the_keys_found(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"words": ["Hi"], "tags": ["INTJ"]}\n')
    with pytest.raises(
        DataError, match=at(path, 1) + re.escape("expected a key 'tokens', found keys ['words', 'tags']")
    ):
        read_tagging(path)


def test_jsonl_tagging_with_unequal_lengths_is_an_error(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"tokens": ["Hi", "!"], "tags": ["INTJ"]}\n')
    with pytest.raises(DataError, match=at(path, 1) + "expected as many tags as tokens, found 1 tags for 2 tokens"):
        read_tagging(path)


# --- formats that do not fit the task ---------------------------------------------------------


def test_tsv_cannot_be_read_for_tagging_and_the_error_suggests_formats(tmp_path):
    path = write(tmp_path, "a.tsv", "good\t1\n")
    with pytest.raises(
        UserError, match=at(path) + "tsv files cannot be read for this task; for tagging use conllu, conll"
    ):
        read_tagging(path)


@pytest.mark.parametrize("name", ["a.conllu", "a.conll"])
def test_conll_files_cannot_be_read_for_classification(tmp_path, name):
    path = write(tmp_path, name, CONLLU)
    with pytest.raises(UserError, match="for classification use tsv, csv or jsonl"):
        read_classification(path)


# --- conllu -----------------------------------------------------------------------------------


def test_conllu_reads_forms_and_upos_by_default(tmp_path):
    path = write(tmp_path, "a.conllu", CONLLU)
    assert read_tagging(path) == [
        Example(("Do", "n't", "go", "."), tags=("AUX", "PART", "VERB", "PUNCT"), line=1),
        Example(("Hi",), tags=("INTJ",), line=10),
    ]


def test_conllu_skips_multiword_ranges_and_empty_nodes(tmp_path):
    path = write(tmp_path, "a.conllu", CONLLU)
    tokens = read_tagging(path)[0].tokens
    assert "Don't" not in tokens and "went" not in tokens


@pytest.mark.parametrize("column", ["xpos", 4, "4"])
def test_conllu_column_may_be_named_or_indexed(tmp_path, column):
    path = write(tmp_path, "a.conllu", CONLLU)
    assert read_tagging(path, column=column)[0].tags == ("VBP", "RB", "VB", ".")


def test_conllu_unknown_column_lists_the_names(tmp_path):
    path = write(tmp_path, "a.conllu", CONLLU)
    with pytest.raises(
        UserError,
        match="unknown CoNLL-U column 'pos'; choose one of id, form, "
        "lemma, upos, xpos, feats, head, deprel, deps, misc",
    ):
        read_tagging(path, column="pos")


@pytest.mark.parametrize("line, n", [("1\tThe", 2), ("\t".join(["x"] * 11), 11)])
def test_conllu_line_with_other_than_10_fields_names_the_line(tmp_path, line, n):
    path = write(tmp_path, "short.conllu", f"# c\n{line}\n\n")
    with pytest.raises(DataError, match=at(path, 2) + f"expected 10 tab-separated CoNLL-U fields, found {n}"):
        read_tagging(path)


def test_conllu_last_sentence_without_a_trailing_blank_line_is_read(tmp_path):
    path = write(tmp_path, "a.conllu", CONLLU.rstrip("\n"))
    assert [ex.tokens for ex in read_tagging(path)][-1] == ("Hi",)


def test_conllu_with_only_comments_has_no_examples(tmp_path):
    path = write(tmp_path, "a.conllu", "# newdoc\n# text = nothing\n")
    with pytest.raises(DataError, match=at(path) + "expected at least one example, found only comments"):
        read_tagging(path)


# --- conll columns ----------------------------------------------------------------------------


def test_conll_reads_the_first_column_as_token_and_the_last_as_tag(tmp_path):
    path = write(tmp_path, "a.txt", CONLL)
    assert read_tagging(path) == [
        Example(("EU", "rejects"), tags=("B-ORG", "O"), line=3),
        Example(("Peter", "Blackburn"), tags=("B-PER", "I-PER"), line=6),
    ]


def test_conll_skips_docstart_lines_and_makes_no_empty_sentence(tmp_path):
    path = write(tmp_path, "a.conll", CONLL + "-DOCSTART- -X- -X- O\n\nHi UH O O\n")
    assert [ex.tokens for ex in read_tagging(path)] == [("EU", "rejects"), ("Peter", "Blackburn"), ("Hi",)]


@pytest.mark.parametrize("column", [1, "1"])
def test_conll_column_may_be_chosen_by_index(tmp_path, column):
    path = write(tmp_path, "a.txt", CONLL)
    assert read_tagging(path, column=column)[0].tags == ("NNP", "VBZ")


def test_conll_line_with_too_few_columns_names_the_line(tmp_path):
    path = write(tmp_path, "a.txt", "EU B-ORG\nrejects\n")
    with pytest.raises(DataError, match=at(path, 2) + "expected at least 2 whitespace-separated columns"):
        read_tagging(path)


def test_conll_line_with_another_column_count_than_its_sentence_is_an_error(tmp_path):
    path = write(tmp_path, "a.txt", "\nEU NNP B-ORG\nrejects O\n")
    with pytest.raises(DataError, match=at(path, 3) + "expected 3 columns as on line 2 of this sentence, found 2"):
        read_tagging(path)


def test_conll_column_must_be_an_index_or_last(tmp_path):
    path = write(tmp_path, "a.txt", CONLL)
    with pytest.raises(UserError, match="expected a column number .* or 'last' .* found 'upos'"):
        read_tagging(path, column="upos")
