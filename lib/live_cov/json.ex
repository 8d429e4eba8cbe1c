defmodule LiveCov.JSON do
  @moduledoc false
  # JSON encoding and decoding through `serde_json` in LiveCov's NIF (OTP 25 and Elixir 1.14
  # have no JSON module, and LiveCov takes no hex dependencies).
  #
  # Encoding: maps become objects (atom keys as strings), lists and tuples arrays, binaries
  # strings (must be UTF-8), `nil` null, booleans, other atoms strings, integers and floats
  # numbers. Structs are encoded as their maps without `__struct__`. Decoding gives maps with
  # string keys.

  alias LiveCov.Native

  @doc "Encodes a term; `pretty: true` indents."
  @spec encode(term, keyword) :: {:ok, binary} | {:error, {atom, String.t()}}
  def encode(term, opts \\ []),
    do: Native.json_encode(prepare(term), Keyword.get(opts, :pretty, false))

  @doc "Like `encode/2` but raises `ArgumentError` on error."
  @spec encode!(term, keyword) :: binary
  def encode!(term, opts \\ []) do
    case encode(term, opts) do
      {:ok, json} -> json
      {:error, {_, message}} -> raise ArgumentError, message
    end
  end

  @doc "Decodes JSON text (a binary or iodata)."
  @spec decode(iodata) :: {:ok, term} | {:error, {atom, String.t()}}
  def decode(data), do: Native.json_decode(IO.iodata_to_binary(data))

  @doc "Like `decode/1` but raises `ArgumentError` on error."
  @spec decode!(iodata) :: term
  def decode!(data) do
    case decode(data) do
      {:ok, term} -> term
      {:error, {_, message}} -> raise ArgumentError, message
    end
  end

  defp prepare(%_{} = struct), do: struct |> Map.from_struct() |> prepare()

  defp prepare(map) when is_map(map),
    do: Map.new(map, fn {k, v} -> {key(k), prepare(v)} end)

  defp prepare(list) when is_list(list), do: Enum.map(list, &prepare/1)
  defp prepare(tuple) when is_tuple(tuple), do: tuple |> Tuple.to_list() |> prepare()

  defp prepare(atom) when is_atom(atom) and atom not in [nil, true, false],
    do: Atom.to_string(atom)

  defp prepare(other), do: other

  defp key(k) when is_binary(k), do: k
  defp key(k) when is_atom(k), do: Atom.to_string(k)
  defp key(k) when is_integer(k), do: Integer.to_string(k)
  defp key(k), do: inspect(k)
end
