"""Offline byte-level BPE tokenizer: round trips, prompts, save/load."""
import pytest

from glid_mm.models.utils.lit_tokenizer import LiTBPETokenizer, pretokenize

LABELS = [
    'ants', 'bees', 'person, car', 'traffic light, person', '3', '12',
    'sky, building, road, car', 'person, dog'
] * 4


@pytest.fixture
def tok():
    t = LiTBPETokenizer(vocab_size=300)
    t.train(
        LABELS,
        prompts=['hym', 'cls', 'coco'],
        labels=dict(hym=['ants', 'bees']))
    return t


@pytest.mark.parametrize('text', [
    'traffic light, person', 'héllo wörld  x_y 123!?', ' a  b ', '',
    'e\u0301 日本語 🐝', 'tab\tand\nnewline'
])
def test_round_trip(tok, text):
    assert ''.join(pretokenize(text)) == text
    assert tok.decode(tok.encode(text)) == text


def test_merges_compress_training_labels(tok):
    assert len(tok.merges) > 10
    assert len(tok.encode('person')) == 1  # frequent word -> one token
    assert len(tok.encode('person')) < len('person'.encode())
    # digits stay single characters (counts are spelled digit by digit)
    assert len(tok.encode('12')) == 2


def test_prompt_tokens_are_single_and_distinct(tok):
    ids = {tok.prompt_id(p) for p in ['hym', 'cls', 'coco']}
    assert len(ids) == 3 and all(i >= 4 and i < tok.byte_offset for i in ids)
    assert tok.decode([tok.BOS, tok.prompt_id('hym'), tok.SEP] +
                      tok.encode('ants') + [tok.EOS] +
                      tok.encode('x')) == 'ants'


def test_training_is_deterministic(tok):
    other = LiTBPETokenizer(vocab_size=300)
    other.train(list(reversed(LABELS)), prompts=['coco', 'cls', 'hym'])
    assert other.merges == tok.merges and other.prompts == tok.prompts


def test_vocab_budget_respected():
    t = LiTBPETokenizer(vocab_size=265, min_frequency=1)
    t.train(LABELS, prompts=['a'])
    assert t.num_tokens <= 265 and len(t.merges) == 265 - 261


def test_save_load(tok, tmp_path):
    path = str(tmp_path / 'vocab.json')
    tok.save(path)
    loaded = LiTBPETokenizer(vocab_size=300, vocab_file=path)
    assert loaded.merges == tok.merges and loaded.prompts == tok.prompts
    assert loaded.labels == dict(hym=['ants', 'bees'])
    assert loaded.encode('traffic light') == tok.encode('traffic light')


def test_bad_arguments_raise(tok):
    with pytest.raises(ValueError, match='vocab_size'):
        LiTBPETokenizer(vocab_size=100)
    with pytest.raises(ValueError, match='min_frequency'):
        LiTBPETokenizer(min_frequency=0)
    with pytest.raises(RuntimeError, match='untrained'):
        LiTBPETokenizer().encode('x')
    with pytest.raises(KeyError, match='not seen'):
        tok.prompt_id('vqa')
    with pytest.raises(ValueError, match='prompt names'):
        LiTBPETokenizer().train(['x'], prompts=['has space'])
    with pytest.raises(ValueError, match='cannot hold'):
        LiTBPETokenizer(vocab_size=261).train(['x'], prompts=['a', 'b'])
    with pytest.raises(ValueError, match='out of range'):
        tok.decode([10_000])
    with pytest.raises(ValueError, match='vocab_size'):
        LiTBPETokenizer(vocab_size=512).load_state_dict(tok.state_dict())
