defmodule LiveCov.Coverdata do
  @moduledoc false
  # OTP cover's export format (`.coverdata`, as written by `:cover.export/1,2` and read by
  # `:cover.import/1`, `mix test.coverage` and excoveralls' `--import-cover`), both ways.
  #
  # The file is a sequence of records, each an external term (`term_to_binary/2`, compressed)
  # preceded by its size in one byte; a record larger than 255 bytes is preceded instead by a
  # small record `{:"$size", size}`. Per module, in order:
  #
  #     {:file, module, beam_file}                  # where the module came from
  #     {module, [{module, f, a, clause, nlines}]}  # cover's clause table (OTP 25 and 26 only)
  #     {{:bump, module, f, a, clause, line}, count}  # one per bump site
  #
  # OTP 27 dropped the clause table: its `:cover.import/1` crashes on a file that has one, and
  # OTP 25's reads a file without one. So a file is written in the format of the running OTP
  # (`encode/2`), and both are read.
  #
  # A `.coverdata` file carries no beam md5, so data read from one describes a build by its
  # sites alone (`LiveCov.Imported` matches it to an instrumented module with the same sites).

  alias LiveCov.{Native, Snapshot, Table}
  alias LiveCov.Snapshot.Meta

  @zero_md5 <<0::128>>

  @typedoc "One module as cover exports it."
  @type entry :: %{
          module: module,
          file: charlist,
          clauses: [{module, atom, non_neg_integer, non_neg_integer, non_neg_integer}],
          bumps: [
            {{:bump, module, atom, non_neg_integer, non_neg_integer, non_neg_integer},
             non_neg_integer}
          ]
        }

  ## Writing

  @doc """
  The `.coverdata` bytes (iodata) of the given entries, in the format of cover generation
  `format` (`:otp25`: with clause records, `:otp27`: without; default: the running OTP's).
  """
  @spec encode([entry], LiveCov.Runtime.generation()) :: iodata
  def encode(entries, format \\ LiveCov.Runtime.generation()) do
    Enum.map(entries, fn e ->
      [
        record({:file, e.module, e.file}),
        if(format == :otp25, do: record({e.module, e.clauses}), else: []),
        Enum.map(e.bumps, &record/1)
      ]
    end)
  end

  defp record(term) do
    bin = :erlang.term_to_binary(term, [:compressed])

    case byte_size(bin) do
      size when size > 255 ->
        header = :erlang.term_to_binary({:"$size", size})
        [<<byte_size(header)::8>>, header, bin]

      size ->
        [<<size::8>>, bin]
    end
  end

  @doc """
  Cover entries for one build of each module of a snapshot (chosen as
  `LiveCov.Snapshot.choose/2` does; options are passed on).
  """
  @spec entries(Snapshot.t(), keyword) :: [entry]
  def entries(%Snapshot{} = snap, opts \\ []) do
    for {_module, hash} <- Enum.sort(Snapshot.choose(snap, opts)) do
      meta = snap.metas[hash]
      entry(meta, Snapshot.counts(snap, hash))
    end
  end

  @doc "The cover entry of one build (`meta`) with its `counts`."
  @spec entry(Meta.t(), [non_neg_integer]) :: entry
  def entry(%Meta{module: m} = meta, counts) do
    %{
      module: m,
      file: cover_file(meta),
      clauses: for({f, a, c, n} <- meta.clauses, do: {m, f, a, c, n}),
      bumps:
        meta.sites
        |> Tuple.to_list()
        |> Enum.zip(counts)
        |> Enum.map(fn {{f, a, c, l}, n} -> {{:bump, m, f, a, c, l}, n} end)
    }
  end

  # cover keeps the beam file; without one, the source path (cover uses a non-.beam
  # "file" as the source when it annotates).
  defp cover_file(%Meta{beam_path: b}) when is_binary(b), do: String.to_charlist(b)
  defp cover_file(%Meta{source: s}) when is_binary(s), do: String.to_charlist(s)
  defp cover_file(_), do: []

  @doc "Writes a snapshot (one build per module) as a `.coverdata` file."
  @spec write(Snapshot.t(), Path.t(), keyword) :: :ok | Snapshot.error()
  def write(%Snapshot{} = snap, path, opts \\ []),
    do: Snapshot.write_file(path, IO.iodata_to_binary(encode(entries(snap, opts))))

  ## Reading

  @doc "True when `data` starts like a cover export (a size byte, then an external term)."
  @spec looks_like?(binary) :: boolean
  def looks_like?(<<n, 131, _::binary>>) when n > 0, do: true
  def looks_like?(_), do: false

  @doc """
  Decodes `.coverdata` bytes into a snapshot: one build per module (sites sorted, counts of
  repeated bump records summed, as cover does), md5 all zero, `content_hash` the md5 of the
  data. An empty file is a valid, empty export.
  """
  @spec decode(binary) :: {:ok, Snapshot.t()} | Snapshot.error()
  def decode(data) when is_binary(data) do
    with {:ok, records} <- records(data, 0, 0, []),
         {:ok, modules} <- collect(records) do
      to_snapshot(modules, :erlang.md5(data))
    end
  end

  @doc "Reads and decodes a `.coverdata` file."
  @spec read(Path.t()) :: {:ok, Snapshot.t()} | Snapshot.error()
  def read(path), do: Snapshot.read_with(path, &decode/1)

  defp records(<<>>, _offset, _i, acc), do: {:ok, Enum.reverse(acc)}

  # Every record is an external term, which starts with 131.
  defp records(<<_n::8, first, _::binary>>, offset, i, _acc) when first != 131,
    do: not_a_term(offset, i)

  defp records(<<n::8, rest::binary>>, offset, i, acc) do
    with {:ok, first, rest} <- take(rest, n, offset, i),
         {:ok, term} <- term(first, offset, i),
         {:ok, term, rest, used} <- sized(term, rest, offset, i) do
      records(rest, offset + 1 + n + used, i + 1, [{term, offset, i} | acc])
    end
  end

  defp take(bin, n, _offset, _i) when byte_size(bin) >= n do
    {part, rest} = :erlang.split_binary(bin, n)
    {:ok, part, rest}
  end

  defp take(bin, n, offset, i) do
    {:error,
     {:truncated,
      "the .coverdata data is truncated: record #{i + 1} at byte #{offset} needs #{n} bytes, " <>
        "#{byte_size(bin)} are left; export it again"}}
  end

  defp sized({:"$size", size}, rest, offset, i) when is_integer(size) and size > 0 do
    with {:ok, bin, rest} <- take(rest, size, offset, i),
         {:ok, term} <- term(bin, offset, i) do
      {:ok, term, rest, size}
    end
  end

  defp sized(term, rest, _offset, _i), do: {:ok, term, rest, 0}

  defp term(bin, offset, i) do
    {:ok, :erlang.binary_to_term(bin)}
  rescue
    ArgumentError -> not_a_term(offset, i)
  end

  defp not_a_term(offset, i) do
    {:error,
     {:bad_coverdata,
      "record #{i + 1} at byte #{offset} is not an Erlang external term: " <>
        "the file is not a cover export (.coverdata) or is damaged"}}
  end

  defp collect(records) do
    Enum.reduce_while(records, {:ok, %{}}, fn {term, offset, i}, {:ok, acc} ->
      case classify(term) do
        {:file, m, file} ->
          {:cont, {:ok, update(acc, m, &Map.put(&1, :file, file))}}

        {:clauses, m, clauses} ->
          {:cont, {:ok, update(acc, m, &Map.put(&1, :clauses, clauses))}}

        {:bump, m, site, n} ->
          {:cont,
           {:ok,
            update(acc, m, fn e ->
              Map.update!(e, :bumps, &Map.update(&1, site, n, fn c -> c + n end))
            end)}}

        :error ->
          {:halt,
           {:error,
            {:bad_coverdata,
             "record #{i + 1} at byte #{offset} is not a cover export record " <>
               "(#{inspect(term, limit: 5, printable_limit: 40)}): the file is not a cover " <>
               "export (.coverdata) or is damaged"}}}
      end
    end)
  end

  defp update(acc, m, fun) do
    Map.update(acc, m, fun.(%{file: nil, clauses: [], bumps: %{}}), fun)
  end

  defp classify({:file, m, file}) when is_atom(m) and (is_list(file) or is_binary(file)),
    do: {:file, m, file}

  defp classify({{:bump, m, f, a, c, l}, n})
       when is_atom(m) and is_atom(f) and is_integer(a) and a >= 0 and is_integer(c) and c >= 0 and
              is_integer(l) and l >= 0 and is_integer(n) and n >= 0,
       do: {:bump, m, {f, a, c, l}, n}

  defp classify({m, clauses}) when is_atom(m) and is_list(clauses) do
    if Enum.all?(clauses, &clause?(&1, m)),
      do: {:clauses, m, for({_, f, a, c, n} <- clauses, do: {f, a, c, n})},
      else: :error
  end

  defp classify(_), do: :error

  defp clause?({m, f, a, c, n}, m)
       when is_atom(f) and is_integer(a) and a >= 0 and is_integer(c) and c >= 0 and
              is_integer(n) and n >= 0,
       do: true

  defp clause?(_, _), do: false

  defp to_snapshot(modules, content_hash) do
    modules = Enum.sort(modules)

    inputs =
      for {m, e} <- modules do
        sites = e.bumps |> Map.keys() |> Enum.sort() |> List.to_tuple()
        beam = e.file && e.file != [] && e.file != "" && to_string(e.file)
        {m, @zero_md5, nil, beam || nil, sites, e.clauses}
      end

    results = if inputs == [], do: [], else: Native.snapshot_metas(inputs)

    Enum.zip([modules, inputs, results])
    |> Enum.reduce_while({:ok, %Snapshot{content_hash: content_hash}}, fn
      {{_m, e}, {m, md5, src, beam, sites, clauses}, {:ok, {hash, encoded}}}, {:ok, snap} ->
        meta = %Meta{
          hash: hash,
          module: m,
          md5: md5,
          source: src,
          beam_path: beam,
          sites: sites,
          clauses: clauses,
          encoded: encoded
        }

        counts = sites |> Tuple.to_list() |> Enum.map(&Map.fetch!(e.bumps, &1)) |> Table.encode()

        {:cont,
         {:ok,
          %{
            snap
            | metas: Map.put(snap.metas, hash, meta),
              counts: Map.put(snap.counts, hash, counts)
          }}}

      {{m, _}, _, {:error, {_kind, msg}}}, _ ->
        {:halt, {:error, {:bad_coverdata, "module #{inspect(m)}: #{msg}"}}}
    end)
  end
end
