"""The book's tooling (``python3 dev.py`` runs it; each file has one job):

- ``layout.py``             where chapters (``NN_slug``, parts ``NN_P_slug``) and the data mirror are; standard library only
- ``imports.py``            what a chapter's code uses: imports, the ``course_utils`` modules it runs, scripts
- ``staleness.py``          when a notebook's outputs are stale: the hashes of its code and of the code it runs
- ``execute.py``            execute a chapter and store outputs with its execution record (``dev.py execute``)
- ``stats_page.py``         the execution-statistics page and the intro's data column (``dev.py stats``)
- ``tolerance.py``          compare outputs token by token: text exactly, numbers within their tolerances
- ``nbval_tolerance.py``    the nbval plugin that applies ``tolerance.py`` to measured cells (``conftest.py``)
- ``rounding.py``           rounding profiles: other CPUs' kernels (``dev.py test --other-rounding``)
- ``measure_tolerances.py`` run a chapter on other CPUs' kernels and seeds; write its tolerances (``dev.py measure``)
- ``prose_numbers.py``      numbers in the prose are what the outputs show
- ``lecture.py``            a chapter is one lecture in a teacher's voice (size, maintainer talk, checks)
- ``reader_notebooks.py``   the chapters as plain-Markdown notebooks for Colab and Jupyter (written by the site build)
- ``colab_check.py``        the declared Colab environment: the static import check and the simulated run
"""
