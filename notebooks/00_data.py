# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 0: The datasets
#
# Every chapter that trains on images gets its data from one place, `course_utils.data`. This
# short chapter loads each dataset the book uses, shows one example of every class and counts the
# images per split, so that later chapters can take the data for granted, and so that you can check,
# on your own machine, that what you have is what the book ran on.
#
# **Learning objectives.** After this chapter you can
#
# - load a dataset with `data.load(name)` and read from its note which data you got;
# - tell a verified dataset from a labelled stand-in, and read the error a missing dataset raises;
# - count the images per class and split, and compute a test set's chance rate (the share of its
#   most frequent class);
# - hold out a seeded, {term}`stratified <Stratified split>` {term}`validation set` with
#   `data.train_val_split`.
#
# **Prerequisites:** none beyond Python, NumPy and pandas.
#
# Symbols follow the book's {ref}`notation`; terms are defined in the {ref}`glossary`.
#
# ```{admonition} Every number here was computed
# :class: note
# The numbers, tables and figures on this page were produced by the code beside them, and every claim
# the text makes is asserted by that code, so the page cannot build if a claim stops holding. Results
# of training vary slightly between machines and seeds; where the chapter compares trained models, it
# runs several seeds and calls differences within their spread a tie.
# ```
#
# What the data layer guarantees (see {doc}`../book/running` for the look-up order and the cache):
#
# - **Verified bytes.** Each file is checked against the SHA-256 pinned in the registry before it is
#   used; a corrupted or truncated file is named and never used.
# - **No silent substitutes.** A dataset that cannot be found is an error that names the files, the
#   places searched and the URLs. A chapter may ask for a *stand-in* instead, and then says so in
#   its output.
# - **The same arrays everywhere**: `uint8` images of shape `(N, 28, 28)`, `int64` labels, class
#   names indexed by label.

# %% tags=["remove-cell"]
# Colab setup: install course_utils and what this chapter needs (a no-op elsewhere).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    source = os.environ.get(
        "COURSE_BOOK_SOURCE",
        "git+https://github.com/nn-training-course/nn-training-book@main",
    )
    package = f"course-utils[ch00] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
SEED = 0  # seeds the sample choice and the validation split

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

import course_utils
from course_utils import data, plots
from course_utils.plots import COLUMN_WIDTH

info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# ## The registry
#
# One entry per dataset: its files, the SHA-256 of each, its canonical URLs and its class names.

# %%
rows = []
for name in data.names():
    spec = data.DATASETS[name]
    rows.append(
        {
            "name": name,
            "title": spec.title,
            "train / test": "{:,} / {:,}".format(*spec.expected_counts),
            "classes": len(spec.classes),
            "files": len(spec.files),
            "license": spec.license,
        }
    )
pd.DataFrame(rows).set_index("name")

# %%
for name in data.names():
    spec = data.DATASETS[name]
    print(f"{name}: {', '.join(f.filename for f in spec.files.values())}")
    print(f"    from {spec.urls[0]}<file>")

# %% [markdown]
# ## Fashion-MNIST and MNIST
#
# Both have 60,000 training and 10,000 test images of 28×28 grey levels in ten classes
# {cite}`ch00-xiao2017fashion,ch00-lecun1998gradient`. The note printed first says which data was loaded;
# the table counts the images of each class in each split.

# %%
datasets = {name: data.load(name) for name in ["fashion-mnist", "mnist"]}
for ds in datasets.values():
    print(ds.note())


# %%
def one_per_class(ds, rng):
    """The index of one randomly chosen training image of every class."""
    return np.array(
        [rng.choice(np.flatnonzero(ds.y_train == k)) for k in range(ds.num_classes)]
    )


def show_one_per_class(ds, rng):
    """One training image of every class, in rows of at most 8 (they fit the column)."""
    idx = one_per_class(ds, rng)
    ncols = 5 if ds.num_classes <= 10 else 8
    plots.image_grid(
        ds.X_train[idx],
        titles=[ds.classes[k] for k in range(ds.num_classes)],
        ncols=ncols,
        size=min(1.4, COLUMN_WIDTH / ncols),
        suptitle=f"{ds.title}: one training image per class",
    )
    plt.show()


rng = np.random.default_rng(SEED)
for ds in datasets.values():
    show_one_per_class(ds, rng)

# %%
counts = pd.concat(
    {ds.title: ds.counts().reset_index(drop=True) for ds in datasets.values()}, axis=1
)
counts.index.name = "label"
counts.loc["total"] = counts.sum()
counts

# %%
assert all(
    ds.counts()["test"].sum() == 10_000 and ds.counts()["train"].sum() == 60_000
    for ds in datasets.values()
)
assert (datasets["fashion-mnist"].counts()["train"] == 6000).all()  # perfectly balanced
mnist_train = datasets["mnist"].counts()["train"].to_numpy()
assert mnist_train.argmin() == 5 and mnist_train.argmax() == 1  # rarest 5, commonest 1

# %% [markdown]
# Fashion-MNIST is perfectly balanced (6,000 training and 1,000 test images per class); MNIST is
# not quite: the table shows its rarest training digit, 5, has 5,421 images and its most common,
# 1, has 6,742. A classifier that always answers "1" would be right on 11.35% of the MNIST test
# set, not 10%; the chance rate that later chapters print is the share of the most frequent class.

# %%
for ds in datasets.values():
    share = np.bincount(ds.y_test).max() / len(ds.y_test)
    print(f"{ds.title:14s} chance rate (most frequent test class): {share:.2%}")

# %% [markdown]
# ### Pixel statistics
#
# The mean and standard deviation (sd) of the pixel values. [Chapter 4](04_minibatch_sign_mnist.ipynb)
# and [chapter 5](05_backprop_fashion_mnist.ipynb) standardize their inputs (subtract a mean,
# divide by an sd) before training, and this is the scale they start from. Fashion-MNIST's images
# are brighter and more spread out than MNIST's, which are mostly black background.

# %%
stats = pd.DataFrame(
    {
        ds.title: {
            "mean (0-255)": ds.X_train.mean(),
            "sd (0-255)": ds.X_train.std(),
            "share of zero pixels": (ds.X_train == 0).mean(),
        }
        for ds in datasets.values()
    }
).T
fm, mn = stats.loc["Fashion-MNIST"], stats.loc["MNIST"]
assert fm["mean (0-255)"] > mn["mean (0-255)"] and fm["sd (0-255)"] > mn["sd (0-255)"]
assert fm["share of zero pixels"] < mn["share of zero pixels"]
stats.round(3)

# %% [markdown]
# ## Sign Language MNIST, or its stand-in
#
# Sign Language MNIST {cite}`ch00-signmnist2017` has 27,455 training and 7,172 test images of 24 hand
# letters (J and Z need motion and are absent). It is distributed as two CSV files and downloaded
# on first use. Asked for plainly, a missing dataset is an error that says what is missing and
# where it looked (here we print its first lines; the full message also lists the places searched
# and the URLs tried):

# %%
try:
    sign = data.load("sign-mnist")
except data.DatasetNotFoundError as err:
    sign = None
    print("\n".join(str(err).splitlines()[:2]))
else:
    print(sign.note())

# %% [markdown]
# A chapter that must run anyway asks for a stand-in, and the note says which data it got. On a
# machine with the real files, the same cell loads Sign Language MNIST and says so.

# %%
sign = data.load("sign-mnist", stand_in=True)
print(sign.note())
show_one_per_class(sign, rng)

# %% [markdown]
# ## A validation split
#
# Model selection must not look at the {term}`test set`, so chapters hold out part of the training
# set. `data.train_val_split` does it seeded and *stratified*: every class keeps its share.

# %%
ds = datasets["fashion-mnist"]
X_tr, X_val, y_tr, y_val = data.train_val_split(
    ds.X_train, ds.y_train, val_fraction=0.1, seed=SEED
)
split = pd.DataFrame(
    {"train": np.bincount(y_tr), "validation": np.bincount(y_val)}, index=ds.classes
)
split.loc["total"] = split.sum()
split.T

# %%
assert (np.bincount(y_val) == 600).all() and len(X_tr) == 54_000

# %% [markdown]
# ## Summary
#
# - `data.load(name)` returns verified `uint8` images, `int64` labels and class names; its note
#   says which data it is.
# - Fashion-MNIST is balanced; MNIST is not quite, so its chance rate is 11.35%, not 10%.
# - A missing dataset is a clear error; a stand-in is only used when asked for, and is labelled.
# - `data.train_val_split` holds out a seeded, stratified validation set.
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch00-
# ```
