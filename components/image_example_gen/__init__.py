"""Image-folder ExampleGen: JPEG/PNG folders to tf.Examples, split by patient."""
