"""An example third-party plugin: a representation (TF-IDF vectors of value descriptions), a matrix predictor
(asymmetric word overlap of descriptions) and a small task (which values' texts use which values' keywords),
all registered through one entry point."""

import re

import numpy as np

import vgbench


class TfidfDescriptions(vgbench.Representation):
    """Words shared between two descriptions make two values similar."""

    metadata = vgbench.RepresentationMetadata(
        name="tfidf",
        version="1",
        description="TF-IDF vectors of value descriptions (example third-party plugin).",
        options=(vgbench.Option("sublinear_tf", bool, True, "Scale term counts as 1 + log(count)."),),
    )

    def vectors(self, value_set, context):
        """One TF-IDF row per value."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [f"{v.name}. {v.description}" for v in value_set.values]
        tfidf = TfidfVectorizer(stop_words="english", sublinear_tf=bool(self.config["sublinear_tf"]))
        return np.asarray(tfidf.fit_transform(texts).todense())


class WordOverlapMatrix(vgbench.Representation):
    """A matrix predictor: P(i, j) = |words(i) ∩ words(j)| / |words(j)|, so P(i, j) ≠ P(j, i)."""

    metadata = vgbench.RepresentationMetadata(
        name="word_overlap",
        version="1",
        description="Share of value j's description words that value i's description uses (example matrix predictor).",
        output="matrix",
    )

    def matrix(self, value_set, context):
        """The n×n overlap matrix in value-set order (row i = value trained toward, column j = value measured)."""
        words = [set(re.findall(r"[a-z]+", v.description.lower())) or {v.id} for v in value_set.values]
        return np.array([[len(wi & wj) / len(wj) for wj in words] for wi in words])


class KeywordOverlap(vgbench.Task):
    """A model-free task: how many of value j's keywords value i's own text uses."""

    metadata = vgbench.TaskMetadata(
        name="keyword_overlap",
        version="1",
        description="Share of value j's keywords found in value i's name and description (example third-party task).",
        cell_meaning="share of column value j's keywords that occur, as whole words, in row value i's text",
        options=(vgbench.Option("min_keywords", int, 1, "Values with fewer keywords get a NaN column.", minimum=1),),
    )

    def build(self, value_set, context):
        """The keyword-share matrix; no replicates, so its ceiling is unknown."""
        words = [set(re.findall(r"[a-z]+", f"{v.name} {v.description}".lower())) for v in value_set.values]
        keywords = [{k.lower() for k in v.keywords} for v in value_set.values]
        matrix = np.array([[len(keywords[j] & words[i]) / len(keywords[j])
                            if len(keywords[j]) >= self.options["min_keywords"] else np.nan
                            for j in range(len(value_set))] for i in range(len(value_set))])
        return vgbench.GroundTruth(task=self.name, task_version=self.version, value_set=value_set.name,
                                   value_ids=tuple(value_set.ids), matrix=matrix,
                                   provenance={"options": dict(self.options)})


@vgbench.hookimpl
def register_representations(register):
    """Register ``tfidf`` and ``word_overlap``."""
    register(TfidfDescriptions)
    register(WordOverlapMatrix)


@vgbench.hookimpl
def register_tasks(register):
    """Register ``keyword_overlap``."""
    register(KeywordOverlap)
