# MNIST: verified download (or copy from `mnist_dir`), then the prepared arrays of the harness.


rule download_mnist:
    output:
        expand("resources/mnist/{name}", name=MNIST_FILES),
    log:
        "resources/logs/download_mnist.log",
    # The source (mirrors or `mnist_dir`) is read from the configuration by the script and is
    # deliberately not a param: the files are verified against pinned hashes, so where they
    # came from does not change them and must not re-run everything downstream.
    script:
        "../scripts/download_mnist.py"


rule prepare:
    input:
        expand("resources/mnist/{name}", name=MNIST_FILES),
    output:
        npz="resources/mnist_prepared.npz",
        sidecar="resources/mnist_prepared.json",
    log:
        "resources/logs/prepare.log",
    script:
        "../scripts/prepare.py"
