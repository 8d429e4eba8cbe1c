defmodule LiveCov.Agent.Auth do
  @moduledoc false
  # Bearer-token check of the agent. The configured token is kept only as its SHA-256; the
  # presented token is hashed too and the two digests are compared in constant time
  # (`:crypto.hash_equals/2`), so neither the token's content nor its length leaks through
  # timing.

  alias LiveCov.Agent.Config

  @doc """
  `:ok` when the request headers (`[{lowercase_name, value}]`) carry the right
  `Authorization: Bearer <token>`, else `{:error, {:unauthorized, message}}`.
  """
  @spec check([{charlist | String.t(), charlist | String.t()}], Config.t()) ::
          :ok | {:error, {:unauthorized, String.t()}}
  def check(_headers, %Config{auth: false}), do: :ok

  def check(headers, %Config{token_hash: expected}) when is_binary(expected) do
    values = for {name, value} <- headers, lower(name) == "authorization", do: to_bin(value)

    case values do
      [] ->
        unauthorized("missing Authorization header; send Authorization: Bearer <token>")

      [value] ->
        case parse(value) do
          {:ok, token} ->
            if :crypto.hash_equals(:crypto.hash(:sha256, token), expected),
              do: :ok,
              else: unauthorized("invalid token")

          :error ->
            unauthorized("Authorization must be \"Bearer <token>\"")
        end

      _ ->
        unauthorized("several Authorization headers; send exactly one")
    end
  end

  def check(_headers, _config), do: unauthorized("the agent has no token configured")

  # Byte-wise, so any header bytes (even invalid UTF-8) are handled.
  defp parse(value) do
    value = trim(value)

    case :binary.match(value, [" ", "\t"]) do
      {at, _} ->
        scheme = binary_part(value, 0, at)
        token = value |> binary_part(at, byte_size(value) - at) |> trim()

        if String.downcase(scheme, :ascii) == "bearer" and token != "" and
             :binary.match(token, [" ", "\t"]) == :nomatch,
           do: {:ok, token},
           else: :error

      :nomatch ->
        :error
    end
  end

  defp trim(bin), do: bin |> trim_leading() |> trim_trailing()

  defp trim_leading(<<c, rest::binary>>) when c in [?\s, ?\t, ?\r, ?\n], do: trim_leading(rest)
  defp trim_leading(bin), do: bin

  defp trim_trailing(""), do: ""

  defp trim_trailing(bin) do
    last = :binary.last(bin)

    if last in [?\s, ?\t, ?\r, ?\n],
      do: trim_trailing(binary_part(bin, 0, byte_size(bin) - 1)),
      else: bin
  end

  defp lower(name), do: name |> to_bin() |> String.downcase(:ascii)

  defp to_bin(v) when is_binary(v), do: v
  defp to_bin(v) when is_list(v), do: :erlang.list_to_binary(v)

  defp unauthorized(message), do: {:error, {:unauthorized, message}}
end
