defmodule LiveCov.Cache do
  @moduledoc false
  # An on-disk cache of instrumented binaries: instrumenting the same build again (the next
  # test run, a node restart) loads the binary compiled last time instead of running the
  # compiler.
  #
  # ## Keys and entries
  #
  # An entry is keyed by the MD5 of the **whole** original `.beam` file and a fingerprint of
  # everything else the instrumented binary depends on: the entry format, LiveCov's version
  # and the MD5 of its instrumenting modules (`LiveCov.Instrument`, `.Forms`, `.Munge`,
  # `.Expand`), the OTP release, the ERTS, compiler and Elixir versions, the mode and the
  # compile profile (`optimize:`, see `LiveCov.Instrument.compile_options/1`). The whole file, not
  # `:beam_lib.md5/1`: that one leaves out the debug info, and a change that only moves lines
  # (a comment added at the top) changes the sites but not the code.
  #
  # An entry holds the instrumented binary, the slot id it was compiled for, the sites and
  # clauses, and the module's source data, behind a magic, the key and an MD5 of the
  # payload. It is written to a temporary file and renamed into place (atomic: concurrent
  # writers, in this VM or others, never leave a half-written entry). An entry that does not
  # read back exactly (wrong magic, key or checksum, truncated, undecodable, unexpected shape)
  # is ignored, the module is compiled normally and the entry rewritten; nothing crashes.
  #
  # ## Slot ids
  #
  # The slot id is a literal in the instrumented code, so an entry is only usable under the
  # slot it was compiled for. `LiveCov.Table.claim/2` installs that slot only if its id was
  # never used in this VM (stale code of another module can never bump it); otherwise the
  # module is compiled normally for a fresh slot and the entry rewritten. Ids start at 0 in
  # every VM, so a node that instruments the same modules after a restart claims the same ids.
  #
  # Fresh slots for modules not in the cache are taken with `LiveCov.Table.register_from/2`
  # above the highest id stored in the cache so far (the `slots` file of the cache
  # directory, written by `checkpoint/1` once per batch), so a changed module never takes an id that an unchanged module's entry waits
  # for (which would cascade: that module would in turn take the next one's id). When the
  # ids stored reach half the table's id space, fresh ids start again from the bottom.
  #
  # ## Configuration
  #
  # Enabled by default, in `:filename.basedir(:user_cache, "live_cov")` (e.g.
  # `~/.cache/live_cov`). Per call (`LiveCov.Pipeline.instrument/2` options), else
  # `config :live_cov, cache: false, cache_dir: "..."`, else the environment variables
  # `LIVE_COV_CACHE=0` and `LIVE_COV_CACHE_DIR`. Only `mode: :counts` instrumentation with the
  # default bump module is cached (`mode: :coverage` recompiles as sites are pruned).
  #
  # The directory is created with mode 0700. Whoever can write to it can make this node load
  # code, as whoever can write the `.beam` files can: keep it private.

  alias LiveCov.{Counter, ModuleInfo, Table}

  @magic "LCCACHE1"
  @format 1
  @ext ".lcc"
  @slots_file "slots"
  # Above this many stored ids, fresh slots start again from the bottom (the table has
  # 1,048,576 ids per VM; claims of higher ids still work).
  @wrap 524_288
  @fingerprint_modules [
    LiveCov.Cache,
    LiveCov.Instrument,
    LiveCov.Instrument.Forms,
    LiveCov.Instrument.Munge,
    LiveCov.Instrument.SysCoverage,
    LiveCov.Instrument.Expand
  ]
  @stats [:hits, :misses, :stores, :corrupt, :slot_taken, :errors]

  defstruct [:dir, :key, :file, :target, :binary, :beam_path]

  @typedoc "A cache lookup that missed: where to store the entry once the module is compiled."
  @type t :: %__MODULE__{
          dir: Path.t(),
          key: binary,
          file: Path.t(),
          target: term,
          binary: binary,
          beam_path: charlist
        }

  ## Configuration

  @doc """
  The cache directory for `opts`, or `nil` when the cache is off (`cache: false` in `opts`,
  in the `:live_cov` application environment, or `LIVE_COV_CACHE=0`).
  """
  @spec dir(keyword) :: Path.t() | nil
  def dir(opts \\ []) do
    if enabled?(opts) do
      Keyword.get(opts, :cache_dir) || Application.get_env(:live_cov, :cache_dir) ||
        System.get_env("LIVE_COV_CACHE_DIR") ||
        :filename.basedir(:user_cache, ~c"live_cov") |> List.to_string()
    end
  end

  defp enabled?(opts) do
    case Keyword.fetch(opts, :cache) do
      {:ok, value} ->
        value != false

      :error ->
        Application.get_env(:live_cov, :cache, true) != false and
          System.get_env("LIVE_COV_CACHE") not in ["0", "false", "off"]
    end
  end

  ## Instrumentation path (LiveCov.Pipeline)

  @doc """
  Looks `target` (a module or a beam path) up in the cache.

    * `{:hit, info, entry}` - the entry was found and its slot claimed: `info` is the
      module's metadata, as instrumenting it would have produced, with the cached binary in
      `info.instrumented`, not loaded yet. Load it (`LiveCov.Instrument.load_many/1`), then
      tell the cache with `loaded/2`.
    * `{:miss, entry}` - instrument normally, taking the slot with `register/2`, then
      `store/2` the result. `entry` is `nil` when the cache is off or does not apply.
  """
  @spec lookup(term, keyword) :: {:hit, ModuleInfo.t(), t} | {:miss, t | nil}
  def lookup(target, opts \\ []) do
    with dir when is_binary(dir) <- dir(opts),
         true <- cacheable?(opts),
         {:ok, module, beam_path} <- locate(target),
         {:ok, binary} <- File.read(beam_path) do
      key = key(binary, opts)
      entry = %__MODULE__{dir: dir, key: key, file: file(dir, key), target: target}
      entry = %{entry | binary: binary, beam_path: beam_path}

      case read_entry(entry.file, key) do
        {:ok, data} ->
          use_entry(entry, module, data, opts)

        :none ->
          miss(entry)

        :corrupt ->
          count(:corrupt)
          miss(entry)
      end
    else
      _ -> {:miss, nil}
    end
  end

  defp miss(entry) do
    count(:misses)
    {:miss, entry}
  end

  defp cacheable?(opts) do
    Keyword.get(opts, :mode, :counts) == :counts and
      Keyword.get(opts, :bump_module, LiveCov.Native) == LiveCov.Native
  end

  # The module (nil for a path) and the beam file, as LiveCov.Instrument.Forms finds them;
  # anything unusual goes the normal way, which explains it.
  defp locate(module) when is_atom(module) do
    case :code.which(module) do
      path when is_list(path) and path != [] -> {:ok, module, path}
      _ -> :error
    end
  end

  defp locate(path) when is_binary(path), do: locate(String.to_charlist(path))

  defp locate(path) when is_list(path) do
    if path != [] and :io_lib.char_list(path),
      do: {:ok, nil, :filename.absname(path)},
      else: :error
  end

  defp locate(_), do: :error

  defp use_entry(entry, wanted, data, opts) do
    module = data.module

    cond do
      wanted != nil and module != wanted -> miss(entry)
      LiveCov.Instrument.Forms.live_cov_module?(module) -> miss(entry)
      :code.is_sticky(module) -> miss(entry)
      true -> claim(entry, data, opts)
    end
  end

  defp claim(entry, data, opts) do
    nsites = tuple_size(data.sites)

    case Counter.claim(data.slot, nsites) do
      {:ok, slot} ->
        {:hit, info(entry, data, slot, opts), entry}

      {:error, {:slot_taken, _}} ->
        count(:slot_taken)
        miss(entry)

      {:error, _} ->
        count(:errors)
        miss(entry)
    end
  end

  @doc """
  After a `lookup/2` hit, the caller loaded `info.instrumented`: `loaded(entry, :ok)` records
  the hit; `loaded(entry, {:error, _})` records the failure (the caller frees the slot and
  instruments the module the normal way).
  """
  @spec loaded(t, :ok | {:error, term}) :: :ok
  def loaded(%__MODULE__{} = entry, :ok) do
    count(:hits)
    # Entries in use stay young for clear(older_than_days: n).
    _ = File.touch(entry.file)
    :ok
  end

  def loaded(%__MODULE__{}, {:error, _}) do
    count(:errors)
    :ok
  end

  defp info(entry, data, slot, opts) do
    ModuleInfo.new(
      module: data.module,
      slot: slot,
      sites: data.sites,
      clauses: data.clauses,
      md5: data.md5,
      beam_path: entry.beam_path,
      source: data.source,
      main_file: data.main_file,
      original: entry.binary,
      instrumented: data.binary,
      instrumented_at: System.system_time(:millisecond),
      mode: Keyword.get(opts, :mode, :counts),
      backend: LiveCov.Counter.name_in(opts),
      cache: nil
    )
  end

  @doc """
  Registers the slot of a module being instrumented after a miss: above every id stored in
  the cache (see the module documentation), or as `LiveCov.Table.register/1` without an entry.
  """
  @spec register(t | nil, non_neg_integer) :: {:ok, Table.slot()} | {:error, term}
  def register(nil, nsites), do: Counter.register(nsites)
  def register(%__MODULE__{dir: dir}, nsites), do: Counter.register_from(low_water(dir), nsites)

  @doc """
  Stores the instrumentation of a module that missed. Does nothing when `entry` is `nil`
  or `info` does not come from the beam that was looked up (it changed in between).
  Failures (read-only or full disk) are counted in `stats/0`, never raised. Returns `:ok`.

  The slot mark is raised in memory; `checkpoint/1` writes it to the cache directory (the
  registry does after every batch). A mark that never reaches the disk (the VM died first)
  costs hits in the next VM, never correctness: an entry whose id a fresh slot took there
  misses with `slot_taken` and is rewritten.
  """
  @spec store(t | nil, ModuleInfo.t()) :: :ok
  def store(nil, _info), do: :ok

  def store(%__MODULE__{} = entry, %ModuleInfo{} = info) do
    if info.original == entry.binary and is_binary(info.instrumented) do
      payload =
        :erlang.term_to_binary(
          %{
            module: info.module,
            slot: info.slot,
            binary: info.instrumented,
            sites: ModuleInfo.sites(info),
            clauses: ModuleInfo.clauses(info),
            md5: info.md5,
            source: info.source,
            main_file: info.main_file
          },
          compressed: 1,
          minor_version: 2
        )

      data = [@magic, entry.key, <<byte_size(payload)::32>>, :erlang.md5(payload), payload]

      with :ok <- ensure_dir(entry.dir),
           :ok <- write_atomic(entry.file, data) do
        count(:stores)
        raise_high_water(entry.dir, info.slot + 1)
        :ok
      else
        _ -> count(:errors)
      end
    end

    :ok
  rescue
    _ ->
      count(:errors)
      :ok
  end

  ## Entries

  defp key(binary, opts) do
    :crypto.hash(:sha256, [
      fingerprint(),
      :erlang.md5(binary),
      "#{Keyword.get(opts, :mode, :counts)}",
      :erlang.term_to_binary(LiveCov.Instrument.compile_options(opts))
    ])
  end

  @doc """
  The fingerprint of everything besides the original beam that an instrumented binary
  depends on (see the module documentation). Computed once per VM.
  """
  @spec fingerprint() :: binary
  def fingerprint do
    case :persistent_term.get({__MODULE__, :fingerprint}, nil) do
      nil ->
        parts = [
          @format,
          Application.spec(:live_cov, :vsn),
          :erlang.system_info(:otp_release),
          :erlang.system_info(:version),
          Application.spec(:compiler, :vsn),
          System.version(),
          Enum.map(@fingerprint_modules, & &1.module_info(:md5))
        ]

        fp = :crypto.hash(:sha256, :erlang.term_to_binary(parts))
        :persistent_term.put({__MODULE__, :fingerprint}, fp)
        fp

      fp ->
        fp
    end
  end

  defp file(dir, key), do: Path.join(dir, Base.encode16(key, case: :lower) <> @ext)

  # {:ok, data} | :none | :corrupt
  defp read_entry(file, key) do
    case File.read(file) do
      {:ok, bin} -> decode_entry(bin, key)
      {:error, :enoent} -> :none
      {:error, _} -> :corrupt
    end
  end

  defp decode_entry(
         <<@magic, key::binary-32, size::32, md5::binary-16, payload::binary-size(size)>>,
         key
       ) do
    with true <- :erlang.md5(payload) == md5,
         %{} = data <- :erlang.binary_to_term(payload),
         true <- valid?(data) do
      {:ok, data}
    else
      _ -> :corrupt
    end
  rescue
    _ -> :corrupt
  end

  defp decode_entry(_bin, _key), do: :corrupt

  defp valid?(data) do
    match?(
      %{
        module: m,
        slot: s,
        binary: <<"FOR1", _::binary>>,
        sites: sites,
        clauses: clauses,
        md5: md5
      }
      when is_atom(m) and is_integer(s) and s >= 0 and is_tuple(sites) and is_list(clauses) and
             is_binary(md5),
      data
    )
  end

  defp ensure_dir(dir) do
    if File.dir?(dir) do
      :ok
    else
      with :ok <- File.mkdir_p(dir), do: File.chmod(dir, 0o700)
    end
  end

  # Readers see the old entry or the new one (the cache directory exists already).
  defp write_atomic(file, data), do: LiveCov.AtomicFile.write(file, data)

  ## Slot high-water mark

  # The lowest id for fresh slots: one past the highest id stored in this cache directory
  # (read once per VM; raised in memory as entries are stored), 0 once it reaches @wrap.
  defp low_water(dir) do
    value = :atomics.get(high_water_ref(dir), 1)
    if value >= @wrap, do: 0, else: value
  end

  defp high_water_key(dir), do: {__MODULE__, :high_water, dir}

  defp high_water_ref(dir) do
    persistent_ref(high_water_key(dir), fn ->
      ref = :atomics.new(2, signed: false)
      mark = read_high_water(dir)
      :atomics.put(ref, 1, mark)
      :atomics.put(ref, 2, mark)
      ref
    end)
  end

  defp read_high_water(dir) do
    with {:ok, text} <- File.read(Path.join(dir, @slots_file)),
         {n, _} when n >= 0 <- Integer.parse(String.trim(text)) do
      n
    else
      _ -> 0
    end
  end

  # Raises the in-memory mark (index 1); checkpoint/1 writes it.
  defp raise_high_water(dir, value) do
    ref = high_water_ref(dir)
    current = :atomics.get(ref, 1)

    cond do
      value <= current -> :ok
      :atomics.compare_exchange(ref, 1, current, value) == :ok -> :ok
      true -> raise_high_water(dir, value)
    end
  end

  @doc """
  Writes the slot mark of the cache directory for `opts` if entries stored since the last
  checkpoint raised it (one small file write per batch instead of one per entry). The file
  only ever grows: a higher mark written by another VM is kept. Returns `:ok`.
  """
  @spec checkpoint(keyword) :: :ok
  def checkpoint(opts \\ []) do
    with dir when is_binary(dir) <- dir(opts),
         ref when ref != nil <- :persistent_term.get(high_water_key(dir), nil) do
      write_high_water(dir, ref)
    end

    :ok
  end

  # Index 2 holds the mark last written; a checkpoint that lost a race writes again.
  defp write_high_water(dir, ref) do
    value = :atomics.get(ref, 1)
    written = :atomics.get(ref, 2)

    if value > written do
      file_value = max(value, read_high_water(dir))

      with :ok <- ensure_dir(dir),
           :ok <- write_atomic(Path.join(dir, @slots_file), Integer.to_string(file_value)) do
        _ = :atomics.compare_exchange(ref, 2, written, value)
        if :atomics.get(ref, 1) > value, do: write_high_water(dir, ref), else: :ok
      else
        _ ->
          count(:errors)
          :ok
      end
    else
      :ok
    end
  end

  ## Maintenance

  @doc """
  Deletes the entries of the cache directory for `opts` (`cache_dir:`, else as `dir/1`),
  with leftover temporary files and the slot mark. With `older_than_days: n`, only entries
  not written or used for `n` days (a hit refreshes an entry's modification time), and the
  slot mark stays. Returns `{:ok, entries_deleted}`.
  """
  @spec clear(keyword) :: {:ok, non_neg_integer}
  def clear(opts \\ []) do
    dir = dir(Keyword.put(opts, :cache, true))
    files = Path.wildcard(Path.join(dir, "*" <> @ext))

    case Keyword.get(opts, :older_than_days) do
      nil ->
        tmp = Path.wildcard(Path.join(dir, "*.tmp"))
        Enum.each(tmp ++ [Path.join(dir, @slots_file)], &File.rm/1)
        {:ok, Enum.count(files, &(File.rm(&1) == :ok))}

      days when is_number(days) and days >= 0 ->
        limit = System.os_time(:second) - round(days * 86_400)

        old =
          Enum.filter(files, fn f ->
            match?({:ok, %{mtime: t}} when t < limit, File.stat(f, time: :posix))
          end)

        {:ok, Enum.count(old, &(File.rm(&1) == :ok))}
    end
  end

  @doc """
  Counters of this VM since it started: `hits`, `misses`, `stores`, `corrupt` (entries
  ignored because they did not read back exactly), `slot_taken` (entries whose slot id was
  already used here) and `errors` (cache directory not writable, and the like).
  """
  @spec stats() :: %{atom => non_neg_integer}
  def stats do
    ref = stats_ref()
    @stats |> Enum.with_index(1) |> Map.new(fn {name, i} -> {name, :counters.get(ref, i)} end)
  end

  @doc "Size of the cache directory for `opts`: `%{dir:, entries:, bytes:}`."
  @spec info(keyword) :: %{dir: Path.t() | nil, entries: non_neg_integer, bytes: non_neg_integer}
  def info(opts \\ []) do
    dir = dir(opts)
    files = if dir, do: Path.wildcard(Path.join(dir, "*" <> @ext)), else: []

    bytes =
      Enum.reduce(files, 0, fn f, acc ->
        case File.stat(f) do
          {:ok, %{size: size}} -> acc + size
          _ -> acc
        end
      end)

    %{dir: dir, entries: length(files), bytes: bytes}
  end

  defp count(name) do
    :counters.add(stats_ref(), Enum.find_index(@stats, &(&1 == name)) + 1, 1)
    true
  end

  defp stats_ref do
    persistent_ref({__MODULE__, :stats}, fn ->
      :counters.new(length(@stats), [:write_concurrency])
    end)
  end

  # A per-VM reference kept in a persistent term, created once (under a node-local lock, so
  # concurrent first callers agree on one).
  defp persistent_ref(key, create) do
    case :persistent_term.get(key, nil) do
      nil ->
        :global.trans(
          {key, self()},
          fn ->
            case :persistent_term.get(key, nil) do
              nil ->
                ref = create.()
                :persistent_term.put(key, ref)
                ref

              ref ->
                ref
            end
          end,
          [node()]
        )

      ref ->
        ref
    end
  end
end
