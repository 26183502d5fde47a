"""Reading: files -> the contract's two tables, with every row or value that could not be
used reported in the data-quality table (`loader`); times parsed exactly (`timeparse`);
large Parquet sets split into batches of children (`batches`)."""
