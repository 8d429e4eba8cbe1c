defmodule LiveCov.PathMap do
  @moduledoc false
  # Where a source compiled at one path is now: `compile_root:`/`runtime_root:` and
  # `path_map:` prefix pairs, applied the same way by the live reports (`LiveCov.Stats`)
  # and by reports of exported data (`LiveCov.ExportFile`); and the name a file is shown by,
  # relative to a root.

  @typedoc "`{compile_prefix, runtime_prefix}` pairs, tried in order, without trailing `/`."
  @type t :: [{String.t(), String.t()}]

  @doc """
  The pairs of `opts` (`:compile_root` with `:runtime_root` first, then `:path_map`), or
  `{:error, {:invalid_option, message}}`.

      iex> LiveCov.PathMap.from_opts(compile_root: "/build/", runtime_root: "/srv")
      {:ok, [{"/build", "/srv"}]}
  """
  @spec from_opts(keyword) :: {:ok, t} | {:error, {:invalid_option, String.t()}}
  def from_opts(opts) do
    extra = Keyword.get(opts, :path_map, [])

    first =
      case {Keyword.get(opts, :compile_root), Keyword.get(opts, :runtime_root)} do
        {nil, nil} -> {:ok, []}
        {c, r} when is_binary(c) and is_binary(r) -> {:ok, [{c, r}]}
        _ -> invalid(":compile_root and :runtime_root must be given together, as strings")
      end

    with {:ok, first} <- first do
      if is_list(extra) and
           Enum.all?(extra, &match?({a, b} when is_binary(a) and is_binary(b), &1)) do
        {:ok, Enum.map(first ++ extra, fn {a, b} -> {trim_slash(a), trim_slash(b)} end)}
      else
        invalid(
          ":path_map must be a list of {compile_prefix, runtime_prefix} string pairs, got: " <>
            inspect(extra, limit: 5, printable_limit: 80)
        )
      end
    end
  end

  @doc """
  `path` under the first pair whose compile prefix it starts with (whole segments only),
  else `path` itself.

      iex> LiveCov.PathMap.map("/build/lib/a.ex", [{"/build", "/srv"}])
      "/srv/lib/a.ex"
      iex> LiveCov.PathMap.map("/buildx/a.ex", [{"/build", "/srv"}])
      "/buildx/a.ex"
  """
  @spec map(String.t(), t) :: String.t()
  def map(path, maps) do
    Enum.find_value(maps, path, fn {from, to} ->
      cond do
        path == from ->
          to

        String.starts_with?(path, from <> "/") ->
          to <> binary_part(path, byte_size(from), byte_size(path) - byte_size(from))

        from == "/" ->
          Path.join(to, path)

        true ->
          nil
      end
    end)
  end

  @doc """
  The name `path` is shown by: relative to `root` when it is under it.

      iex> LiveCov.PathMap.display_name("/srv/app/lib/a.ex", "/srv/app")
      "lib/a.ex"
  """
  @spec display_name(String.t(), String.t() | nil) :: String.t()
  def display_name(path, root) when root in [nil, "/"], do: path

  def display_name(path, root) do
    if String.starts_with?(path, root <> "/"),
      do: binary_part(path, byte_size(root) + 1, byte_size(path) - byte_size(root) - 1),
      else: path
  end

  @doc "A path without its trailing `/` (`/` stays)."
  @spec trim_slash(String.t()) :: String.t()
  def trim_slash("/"), do: "/"
  def trim_slash(path), do: String.trim_trailing(path, "/")

  defp invalid(message), do: {:error, {:invalid_option, message}}
end
