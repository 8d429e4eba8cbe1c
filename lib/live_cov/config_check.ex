defmodule LiveCov.ConfigCheck do
  @moduledoc false
  # The validators of the agent's and the gateway's settings (`LiveCov.Agent.Config`,
  # `LiveCov.Gateway.Config`). Each takes the error kind of its caller first
  # (`:invalid_agent_config`, `:invalid_gateway_config`) and returns `{:ok, value}` (or
  # `:ok`) or `{:error, {kind, message}}` naming the setting and what it takes.

  @min_token 16

  def error(kind, message), do: {:error, {kind, message}}

  def keys(kind, opts, known, what) do
    cond do
      not Keyword.keyword?(opts) ->
        error(kind, "#{what}s must be given as a keyword list, got: #{inspect(opts, limit: 5)}")

      (unknown = Keyword.keys(opts) -- known) != [] ->
        error(kind, "unknown #{what}(s) #{inspect(unknown)}; valid: #{inspect(known)}")

      true ->
        :ok
    end
  end

  def int(kind, opts, key, default, min, max) do
    case Keyword.get(opts, key, default) do
      n when is_integer(n) and n >= min and n <= max -> {:ok, n}
      other -> error(kind, "#{key}: must be an integer #{min}..#{max}, got: #{inspect(other)}")
    end
  end

  def string(kind, s, what) when is_binary(s) and s != "" do
    if String.valid?(s), do: {:ok, s}, else: error(kind, "#{what}: must be UTF-8 text")
  end

  def string(_kind, s, _what) when is_atom(s) and s not in [nil, true, false],
    do: {:ok, Atom.to_string(s)}

  def string(kind, other, what),
    do: error(kind, "#{what}: must be a non-empty string, got: #{inspect(other)}")

  def url(kind, url, what) when is_binary(url) do
    case URI.new(url) do
      {:ok, %URI{scheme: s, host: h}} when s in ["http", "https"] and is_binary(h) and h != "" ->
        {:ok, String.trim_trailing(url, "/")}

      _ ->
        error(
          kind,
          "#{what}: #{inspect(url)} is not an http(s) URL; give e.g. \"http://10.0.0.5:9568\""
        )
    end
  end

  def url(kind, other, what),
    do: error(kind, "#{what}: must be a URL string, got: #{inspect(other)}")

  def token(_kind, nil, _what), do: {:ok, nil}

  def token(kind, {:system, var}, what) when is_binary(var) do
    case System.get_env(var) do
      nil ->
        error(kind, "#{what}: the environment variable #{var} is not set; set it to the secret")

      value ->
        token(kind, value, what)
    end
  end

  def token(kind, t, what) when is_binary(t) do
    cond do
      byte_size(t) < @min_token ->
        error(
          kind,
          "#{what}: too short (#{byte_size(t)} bytes); use at least #{@min_token} bytes"
        )

      String.contains?(t, [" ", "\t", "\r", "\n"]) ->
        error(kind, "#{what}: must not contain whitespace")

      true ->
        {:ok, t}
    end
  end

  def token(kind, other, what),
    do:
      error(
        kind,
        "#{what}: must be a string or {:system, \"VAR\"}, got: #{inspect(other, limit: 3)}"
      )

  def atomish(_kind, a, _what) when is_atom(a) and a not in [nil, true, false], do: {:ok, a}

  def atomish(_kind, s, _what) when is_binary(s) and s != "" and byte_size(s) < 256,
    do: {:ok, String.to_atom(s)}

  def atomish(kind, other, what),
    do: error(kind, "#{what}: must be an atom or a string, got: #{inspect(other)}")

  def optional_atomish(_kind, nil, _what), do: {:ok, nil}
  def optional_atomish(kind, v, what), do: atomish(kind, v, what)

  def bind(kind, addr) when is_tuple(addr) do
    if :inet.is_ip_address(addr), do: {:ok, addr}, else: bad_bind(kind, addr)
  end

  def bind(kind, addr) when is_binary(addr) or is_list(addr) do
    case :inet.parse_strict_address(to_charlist(addr)) do
      {:ok, ip} -> {:ok, ip}
      {:error, _} -> bad_bind(kind, addr)
    end
  rescue
    _ -> bad_bind(kind, addr)
  end

  def bind(kind, addr), do: bad_bind(kind, addr)

  defp bad_bind(kind, addr),
    do:
      error(
        kind,
        "bind: #{inspect(addr)} is not an IP address; give e.g. \"127.0.0.1\" or \"0.0.0.0\""
      )

  # A keyword list or map entry of a list option, as a map with atom keys.
  def entry(kind, entry, known, list, i) do
    map =
      cond do
        is_map(entry) -> entry
        is_list(entry) and Keyword.keyword?(entry) -> Map.new(entry)
        true -> nil
      end

    unknown = if map && known, do: Map.keys(map) -- known, else: []

    cond do
      map == nil ->
        error(kind, "#{list}[#{i}]: must be a keyword list, got: #{inspect(entry, limit: 5)}")

      unknown != [] ->
        error(kind, "#{list}[#{i}]: unknown key(s) #{inspect(unknown)}; valid: #{inspect(known)}")

      true ->
        {:ok, map}
    end
  end

  # Validates each element of list option `key` with fun.(element, index).
  def list(kind, opts, key, fun) do
    case Keyword.get(opts, key, []) do
      list when is_list(list) ->
        list
        |> Enum.with_index()
        |> LiveCov.Util.map_ok(fn {e, i} -> fun.(e, i) end)

      other ->
        error(kind, "#{key}: must be a list, got: #{inspect(other, limit: 5)}")
    end
  end

  # Like list/3 for a plain list; fun returns {:ok, v} | {:error, message}.
  def each(kind, list, what, fun) do
    LiveCov.Util.map_ok(list, fn e ->
      with {:error, msg} <- fun.(e), do: error(kind, "#{what}: #{msg}")
    end)
  end
end
