"""A lexical reference representation: TF-IDF over the texts (scikit-learn).

In the embedded run the best layer pair of most model pairs is (0, 0), the mean-pooled
input embeddings: a bag of words. To tell shared meaning from shared words, every model
is also scored against a representation that knows nothing but the words: TF-IDF
(sublinear term frequency, words of one or more letters, rows L2-normalised) fitted on the
texts being compared. A model that agrees with TF-IDF as much as with other models agrees
on words.

Example:
    >>> g = tfidf_gram(["a red rose", "a red rose", "the grey sea"])
    >>> g.shape, round(float(g[0, 1]), 3), round(float(g[0, 2]), 3)
    ((3, 3), 1.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LEXICAL_MODEL = "tfidf"  # the name of the lexical space in tables


def tfidf_matrix(texts: Sequence[str]) -> object:
    """The sparse ``N x V`` TF-IDF matrix of ``texts`` (rows L2-normalised).

    Example:
        >>> tfidf_matrix(["a b", "b c"]).shape
        (2, 3)
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("tfidf needs at least one text")
    vectorizer = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    try:
        return vectorizer.fit_transform(texts)
    except ValueError as err:  # every text empty of words
        raise ValueError(f"no words in the texts for TF-IDF: {err}") from err


def tfidf_gram(texts: Sequence[str]) -> np.ndarray:
    """``N x N`` float32 cosine similarities of the texts' TF-IDF vectors (0 for a text
    without words)."""
    matrix = tfidf_matrix(texts)
    return np.asarray((matrix @ matrix.T).toarray(), dtype=np.float32)
