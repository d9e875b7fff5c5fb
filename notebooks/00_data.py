# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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
# The mean and standard deviation (sd) of the pixel values: the scale a model sees when it is fed
# raw pixels, as in [chapter 4.1](04_1_minibatches.ipynb). [Chapter 4.3](04_3_learning_rates.ipynb)
# shows what rescaling and standardizing the inputs (subtract a mean, divide by an sd) change, and
# [chapter 5](05_1_backprop_fashion_mnist.ipynb) standardizes its inputs. Fashion-MNIST's images
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
# ## Sign Language MNIST
#
# Sign Language MNIST {cite}`ch00-signmnist2017` has 27,455 training and 7,172 test images of
# hands showing 24 letters of the American manual alphabet, cropped to 28×28 grey levels. J and
# Z need a motion and have no still image, so the files' labels run from $0$ to $24$ without
# $9$; the data layer numbers the 24 letters $0$ to $23$. It comes as two CSV files, one row per
# image: the label, then the $784$ pixels. Chapter 4 trains on it.

# %%
sign = data.load("sign-mnist", stand_in=True)
data.show_note(sign)
show_one_per_class(sign, rng)
print(
    f"pixels: mean {sign.X_train.mean():.1f}, sd {sign.X_train.std():.1f}, "
    f"share of zeros {(sign.X_train == 0).mean():.3f}"
)
sign_counts = sign.counts()
sign_counts.T

# %%
train_share = sign_counts["train"] / sign_counts["train"].sum()
test_share = sign_counts["test"] / sign_counts["test"].sum()
commonest_train = train_share.idxmax()
print(
    f"training: {sign_counts['train'].min()} to {sign_counts['train'].max()} "
    "images per "
    f"letter; test: {sign_counts['test'].min()} to {sign_counts['test'].max()}"
)
print(
    f"chance rate (most frequent test letter, {test_share.idxmax()}): "
    f"{test_share.max():.2%}\n"
    f"always answering the most frequent training letter ({commonest_train}) "
    "is right on "
    f"{test_share[commonest_train]:.2%} of the test set"
)

# %% [markdown]
# Unlike Fashion-MNIST, neither split is balanced, and they are unbalanced differently: the
# most frequent training letter is among the rarest in the test set, so the "most frequent
# class" guess, a fair floor for MNIST, is worse than uniform guessing ($1/24 \approx 4.2\%$)
# here. Chapter 4 compares its accuracies with $1/K$. The images are photographs, with almost
# no black background: a mean pixel of 159.3, more than twice Fashion-MNIST's, and almost no
# zeros. A model fed raw pixels sees large inputs, which
# [chapter 4.1](04_1_minibatches.ipynb) will feel.
#
# ## When a dataset is missing
#
# Asked for plainly, a dataset that can be neither found nor downloaded is an error that says
# what is missing, where the loader looked, which URLs it would use and what to do. Here the
# loader is pointed at empty folders with downloading off, as on a machine without the files and
# without a network (the hidden cell sets the environment variables of
# {doc}`../book/running` to empty folders for one call):


# %% tags=["hide-input"]
def load_from_nowhere(name):
    """data.load(name) with an empty mirror and cache and downloading off: the error
    text."""
    saved = {
        k: os.environ.get(k) for k in ("COURSE_DATA", "COURSE_CACHE", "COURSE_OFFLINE")
    }
    with tempfile.TemporaryDirectory() as empty:
        os.environ.update(COURSE_DATA=empty, COURSE_CACHE=empty, COURSE_OFFLINE="1")
        try:
            data.load(name)
        except data.DatasetNotFoundError as err:
            return str(err).replace(empty, "<empty folder>")
        finally:
            for key, value in saved.items():
                os.environ.pop(key) if value is None else os.environ.update(
                    {key: value}
                )
    return None


message = load_from_nowhere("sign-mnist")
print("\n".join(line[:86] for line in message.splitlines()[:6]))

# %% [markdown]
# A chapter that must run anyway asks for a stand-in: `data.load("sign-mnist", stand_in=True)`
# then returns Fashion-MNIST (or, without that too, scikit-learn's small digits), and its note,
# printed where chapter 4 loads its data, starts with "STAND-IN DATA" and says which data ran.
# The chapter's class names, number of classes and chance rate come from the loaded data, so
# the same code runs on either. The book's statistics page lists the data each chapter ran on.
#
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

# %% tags=["remove-input"]
assert (np.bincount(y_val) == 600).all() and len(X_tr) == 54_000
print(
    "Checked: every class holds exactly 600 validation images; 54,000 remain for "
    "training."
)

# %% [markdown]
# ## Summary
#
# - `data.load(name)` returns verified `uint8` images, `int64` labels and class names; its note
#   says which data it is.
# - Fashion-MNIST is balanced; MNIST is not quite, so its chance rate is 11.35%, not 10%.
# - Sign Language MNIST's 24 letters are unbalanced, differently in the two splits: its chance
#   rate is the uniform $1/24$, not the share of the most frequent training letter.
# - A missing dataset is a clear error; a stand-in is only used when asked for, and is labelled.
# - `data.train_val_split` holds out a seeded, stratified validation set.
#
# ## Exercises
#
# ```{exercise} Chance rates
# :label: ex-ch0-chance
#
# For each of the three datasets, compute the accuracy of (a) guessing a class uniformly at
# random, (b) always answering the most frequent training class, and (c) always answering the
# most frequent test class. Which of them is a fair floor for a classifier, and why is (c) not?
# ```
#
# ```{solution} ex-ch0-chance
# :class: dropdown
#
# (a) is $1/K$: 10% for Fashion-MNIST and MNIST, $1/24 \approx 4.2\%$ for Sign Language MNIST.
# (b) is `np.mean(ds.y_test == np.bincount(ds.y_train).argmax())`: 10% for Fashion-MNIST (every
# class is as frequent), 11.35% for MNIST (the digit 1), and for Sign Language MNIST the share
# printed above. (c) is `np.bincount(ds.y_test).max() / len(ds.y_test)`. A classifier may only
# learn from the training set, so (a) and (b) are floors it could reach without looking at an
# image; (c) uses the test labels, which no honest model sees.
# ```
#
# ```{exercise} A split that keeps the classes' shares
# :label: ex-ch0-split
#
# Hold out 10% of Sign Language MNIST's training images with `data.train_val_split` and check
# that every letter keeps its share (to one image). Then hold out 10% with a plain random
# permutation and compare the largest change of a letter's share.
# ```
#
# ````{solution} ex-ch0-split
# :class: dropdown
#
# ```python
# X_tr, X_val, y_tr, y_val = data.train_val_split(sign.X_train, sign.y_train, 0.1, seed=0)
# expected = 0.1 * np.bincount(sign.y_train)
# assert np.all(np.abs(np.bincount(y_val) - expected) <= 1)
# perm = np.random.default_rng(0).permutation(len(sign.y_train))[: len(y_val)]
# print(np.abs(np.bincount(sign.y_train[perm], minlength=24) - expected).max())
# ```
#
# A stratified split keeps every letter's count within one image of its share; a plain random
# split misses some letters by tens of images, which changes the validation accuracy a little
# from split to split.
# ````
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch00-
# ```
