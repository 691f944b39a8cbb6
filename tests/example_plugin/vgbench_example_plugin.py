"""An example third-party representation: TF-IDF bag-of-words vectors of value descriptions."""

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
        tfidf = TfidfVectorizer(stop_words="english", sublinear_tf=self.options["sublinear_tf"])
        return np.asarray(tfidf.fit_transform(texts).todense())


@vgbench.hookimpl
def register_representations(register):
    """Register ``tfidf``."""
    register(TfidfDescriptions)
