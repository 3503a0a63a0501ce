"""English filter on real verse (the study's table examples and public-domain poems)."""

from __future__ import annotations

import pytest

from uaes_hf.data.english import (
    STUDY_PROPORTIONS,
    EnglishScorer,
    english_lexicon,
    english_ratio_table,
    format_ratio_table,
    word_tokens,
)

HINDI = """आज अपने ही खटकने लग गए
रिश्ते नाज़ुक थे चटकने लग गए
रास्तों की मुश्किलें हल हो गईं
आके मंज़िल पर भटकने लग गए
क्या कभी पहले भी ऐसा था हुआ"""
URDU_1 = """Nazakat husn se mashroot hoti gar zamane main.

To ye muflis pre paker na bikte aane aane main."""
URDU_2 = """Woyese to hum mile na kahin, ajnabi se they,
Rishte na jane kaise kahan ke kabhi ke they.
Dekha jo unko aankhon ne chupke se keya kaha,
Alam ajeeb dil pe mere bebasi ke they.
Majboor kar ke jane kahan ja ke chup gaye,"""
OLD_ENGLISH = """Nu scylun hergan hefaenricaes uard
metudæs maecti end his modgidanc
uerc uuldurfadur sue he uundra gihuaes
eci dryctin or astelidæ
he aerist scop aelda barnum"""
FRENCH = """Ne vous étonnez pas, objets sacrés et doux,

Si quelqu'air de tristesse obscurcit mon visage. Quand un savant crayon dessinait cette image J'attendais l'échafaud et je pensais à vous."""
MIDDLE_ENGLISH = """ALLAS! my worthi maister honorable,
This landes verray tresor and richesse!
Deth by thy deth hath harme irreparable
Unto us doon: hir vengeable duresse
Despoiled hath this land of the swetnesse"""
TEASDALE = """There will come soft rains and the smell of the ground,
And swallows circling with their shimmering sound;
And frogs in the pools singing at night,
And wild plum trees in tremulous white;
Robins will wear their feathery fire,
Whistling their whims on a low fence-wire;"""
FROST = """Whose woods these are I think I know.
His house is in the village though;
He will not see me stopping here
To watch his woods fill up with snow."""
DICKINSON = """Hope is the thing with feathers
That perches in the soul,
And sings the tune without the words,
And never stops at all,"""
STUDY_MODERN = """Promise Of A Child (Dramatic Monologue)
Believe me my, tribe
I'm your child
I know your dream"""


@pytest.fixture(scope="module")
def scorer() -> EnglishScorer:
    return EnglishScorer()


@pytest.mark.parametrize(
    "verse",
    [HINDI, URDU_1, URDU_2, OLD_ENGLISH, FRENCH, MIDDLE_ENGLISH],
    ids=["hindi", "urdu-1", "urdu-2", "old-english", "french", "middle-english"],
)
def test_non_english_verse_fails(scorer: EnglishScorer, verse: str) -> None:
    assert scorer.ratio(verse) < 0.8


@pytest.mark.parametrize(
    "verse",
    [TEASDALE, FROST, DICKINSON, STUDY_MODERN],
    ids=["teasdale", "frost", "dickinson", "study"],
)
def test_modern_english_passes(scorer: EnglishScorer, verse: str) -> None:
    assert scorer.ratio(verse) >= 0.8


def test_hindi_scores_zero(scorer: EnglishScorer) -> None:
    assert scorer.ratio(HINDI) == 0.0
    assert scorer.ratio("123 !!") == 0.0


def test_ratio_matches_brute_force(scorer: EnglishScorer) -> None:
    import simplemma

    lexicon = english_lexicon(3.0)
    tokens = word_tokens(FRENCH)
    hits = sum(t in lexicon or simplemma.lemmatize(t, lang="en").lower() in lexicon for t in tokens)
    assert scorer.ratio(FRENCH) == pytest.approx(hits / len(tokens))


def test_lexicon_excludes_borrowed_words_and_threshold_is_monotone() -> None:
    assert "bonjour" not in english_lexicon(3.0)
    assert {"the", "river", "meadow"} <= english_lexicon(3.0)
    assert english_lexicon(3.5) < english_lexicon(3.0)
    with pytest.raises(ValueError, match="min_zipf"):
        english_lexicon(-1.0)


def test_study_table_has_one_row_per_proportion(scorer: EnglishScorer) -> None:
    texts = [HINDI, URDU_1, FRENCH, TEASDALE, FROST]
    ratios = [scorer.ratio(t) for t in texts]
    rows = english_ratio_table(texts, ratios, ["h", "u", "f", "t", "fr"], tolerance=0.06)
    assert [r.target for r in rows] == list(STUDY_PROPORTIONS)
    assert rows[0].title == "h" and rows[0].ratio == 0.0
    assert rows[-1].title == "fr"
    for row in rows:
        assert row.ratio is None or abs(row.ratio - row.target) <= 0.06
    assert "proportion 0.00" in format_ratio_table(rows)
