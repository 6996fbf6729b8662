"""What bpfmap reads about the host it runs on: names of the objects programs record as
numbers (``hostnames``), instruction addresses to symbols (``symbols``), and the files and
streams users name as input, read with bounds (``inputs``).  The lowest floor above
``errors``: display formats and object references read it, it reads neither."""
