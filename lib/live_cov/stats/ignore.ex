defmodule LiveCov.Stats.Ignore do
  @moduledoc false
  # Exclusion rules used by `LiveCov.Stats.build/2`.
  #
  # ## Ignore comments (excoveralls-compatible)
  #
  # A marker counts only inside a comment (after `#` in Elixir or `%` in Erlang):
  #
  #   * `# coveralls-ignore-start` - this line and every following line are ignored
  #     up to and including the next `# coveralls-ignore-stop` line (or the end of
  #     the file when there is no stop marker).
  #   * `# coveralls-ignore-stop` - ends an ignored region (the marker line itself is
  #     ignored).
  #   * `# coveralls-ignore-next-line` - this line and the line after it are ignored.
  #
  # Ignored lines get `coverage: nil`: they count neither as hits nor as misses.
  #
  # ## Module and file filters
  #
  #   * `ignore_modules:` - atoms (exact module) or `Regex`es matched against the
  #     module name as written in source (`"MyApp.Repo"` for Elixir, `"my_mod"` for
  #     Erlang modules).
  #   * `skip_files:` - `Regex`es matched against the display filename *and* the
  #     absolute path; a match on either skips the file.

  @marker ~r/[#%].*coveralls-ignore-(start|stop|next-line)/

  @doc """
  Returns the set of 1-based line numbers that the ignore comments exclude, given
  the file's lines (without terminators).

      iex> LiveCov.Stats.Ignore.ignored_lines(["a", "# coveralls-ignore-next-line", "b", "c"])
      MapSet.new([2, 3])
  """
  @spec ignored_lines([String.t()]) :: MapSet.t(pos_integer())
  def ignored_lines(lines) when is_list(lines) do
    {set, _state} =
      lines
      |> Enum.with_index(1)
      |> Enum.reduce({MapSet.new(), :normal}, fn {text, n}, {set, state} ->
        marker = marker(text)

        case {state, marker} do
          {:region, :stop} -> {MapSet.put(set, n), :normal}
          {:region, _} -> {MapSet.put(set, n), :region}
          {_, :start} -> {MapSet.put(set, n), :region}
          {_, :next_line} -> {MapSet.put(set, n), :next}
          {_, :stop} -> {MapSet.put(set, n), :normal}
          {:next, nil} -> {MapSet.put(set, n), :normal}
          {:normal, nil} -> {set, :normal}
        end
      end)

    set
  end

  # Cheap pre-check keeps the regex off the hot path for ordinary lines.
  defp marker(text) do
    if :binary.match(text, "coveralls-ignore-") == :nomatch do
      nil
    else
      case Regex.run(@marker, text, capture: :all_but_first) do
        ["start"] -> :start
        ["stop"] -> :stop
        ["next-line"] -> :next_line
        _ -> nil
      end
    end
  end

  @doc """
  Validates and normalises an `ignore_modules:` list. Strings are compiled as
  regexes. Returns `{:ok, patterns}` or `{:error, {:invalid_option, message}}`.
  """
  @spec normalize_module_patterns(term()) ::
          {:ok, [atom() | Regex.t()]} | {:error, {atom(), String.t()}}
  def normalize_module_patterns(list), do: normalize(list, :ignore_modules, true)

  @doc """
  Validates and normalises a `skip_files:` list (Regexes, or strings compiled as
  regexes).
  """
  @spec normalize_file_patterns(term()) :: {:ok, [Regex.t()]} | {:error, {atom(), String.t()}}
  def normalize_file_patterns(list), do: normalize(list, :skip_files, false)

  defp normalize(nil, _opt, _atoms?), do: {:ok, []}

  defp normalize(list, opt, atoms?) when is_list(list) do
    LiveCov.Util.map_ok(list, fn item ->
      with :error <- pattern(item, atoms?) do
        {:error,
         {:invalid_option,
          "#{opt}: #{inspect(item)} is not a valid pattern; use " <>
            if(atoms?, do: "a module atom, ", else: "") <>
            "a Regex (~r/.../) or a regex string"}}
      end
    end)
  end

  defp normalize(other, opt, _atoms?) do
    {:error, {:invalid_option, "#{opt} must be a list, got: #{inspect(other)}"}}
  end

  defp pattern(%Regex{} = r, _), do: {:ok, r}
  defp pattern(a, true) when is_atom(a) and not is_nil(a) and not is_boolean(a), do: {:ok, a}

  defp pattern(s, _) when is_binary(s) do
    case Regex.compile(s) do
      {:ok, r} -> {:ok, r}
      _ -> :error
    end
  end

  defp pattern(_, _), do: :error

  @doc "True when `module` matches one of the (normalised) `ignore_modules:` patterns."
  @spec module_ignored?(atom(), [atom() | Regex.t()]) :: boolean()
  def module_ignored?(_module, []), do: false

  def module_ignored?(module, patterns) do
    name = module_name(module)

    Enum.any?(patterns, fn
      %Regex{} = r -> Regex.match?(r, name)
      a -> a == module
    end)
  end

  @doc "True when any of `names` matches one of the `skip_files:` regexes."
  @spec file_skipped?([String.t()], [Regex.t()]) :: boolean()
  def file_skipped?(_names, []), do: false

  def file_skipped?(names, patterns) do
    Enum.any?(patterns, fn r -> Enum.any?(names, &Regex.match?(r, &1)) end)
  end

  @doc """
  The module's name as written in source: `"MyApp.Repo"` for Elixir modules,
  `"my_mod"` for Erlang ones.

      iex> LiveCov.Stats.Ignore.module_name(MyApp.Repo)
      "MyApp.Repo"
      iex> LiveCov.Stats.Ignore.module_name(:lists)
      "lists"
  """
  @spec module_name(atom()) :: String.t()
  def module_name(module) when is_atom(module) do
    case Atom.to_string(module) do
      "Elixir." <> rest -> rest
      other -> other
    end
  end
end
