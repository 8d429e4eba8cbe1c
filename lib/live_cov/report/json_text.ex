defmodule LiveCov.Report.JSONText do
  @moduledoc """
  Minimal, dependency-free JSON encoder/decoder used by the JSON report formats.

  Stand-in until the NIF's `LiveCov.Native.json_encode/1` (serde_json) exists;
  formats call only `encode!/1`, so swapping the backend is a one-line change.

  Encoding: `nil` → `null`, booleans, integers, floats (shortest round-trip
  form), strings (RFC 8259 escaping; invalid UTF-8 bytes become U+FFFD), other
  atoms → strings, lists → arrays, maps → objects with keys sorted (atom or
  string keys). U+2028/U+2029 are escaped too, so output is safe inside
  `<script>`. Anything else (tuples, pids, …) is rejected.
  """

  @doc "Encodes `term` to JSON iodata, or `{:error, {:unsupported_term, msg}}`."
  @spec encode(term()) :: {:ok, iodata()} | {:error, {atom(), String.t()}}
  def encode(term) do
    {:ok, enc(term)}
  catch
    {:unsupported, t} ->
      {:error,
       {:unsupported_term,
        "cannot encode #{inspect(t, limit: 5)} as JSON; use maps, lists, strings, numbers, booleans or nil"}}
  end

  @doc "Like `encode/1` but raises `ArgumentError` on unsupported terms."
  @spec encode!(term()) :: iodata()
  def encode!(term) do
    case encode(term) do
      {:ok, io} -> io
      {:error, {_, msg}} -> raise ArgumentError, msg
    end
  end

  defp enc(nil), do: "null"
  defp enc(true), do: "true"
  defp enc(false), do: "false"
  defp enc(i) when is_integer(i), do: Integer.to_string(i)
  defp enc(f) when is_float(f), do: :erlang.float_to_binary(f, [:short])
  defp enc(s) when is_binary(s), do: string(s)
  defp enc(a) when is_atom(a), do: string(Atom.to_string(a))
  defp enc([]), do: "[]"
  defp enc(list) when is_list(list), do: [?[, join(list, &enc/1), ?]]

  defp enc(map) when is_map(map) and not is_struct(map) do
    pairs =
      map
      |> Enum.map(fn {k, v} -> {key(k), v} end)
      |> Enum.sort_by(&elem(&1, 0))

    [?{, join(pairs, fn {k, v} -> [string(k), ?:, enc(v)] end), ?}]
  end

  defp enc(other), do: throw({:unsupported, other})

  defp key(k) when is_binary(k), do: k
  defp key(k) when is_atom(k) and not is_nil(k), do: Atom.to_string(k)
  defp key(k) when is_integer(k), do: Integer.to_string(k)
  defp key(k), do: throw({:unsupported, k})

  defp join([], _f), do: []
  defp join([h | t], f), do: [f.(h) | Enum.map(t, fn x -> [?,, f.(x)] end)]

  @doc """
  Escapes `s` as a JSON string literal (with quotes).

      iex> LiveCov.Report.JSONText.string("a\\"b\\n") |> IO.iodata_to_binary()
      ~S("a\\"b\\n")
  """
  @spec string(binary()) :: iodata()
  def string(s) when is_binary(s), do: [?", escape(s, s, 0, 0, []), ?"]

  # Scans the binary, copying unescaped runs as sub-binaries.
  defp escape(<<>>, orig, start, len, acc), do: Enum.reverse(flush(orig, start, len, acc))

  defp escape(<<c, rest::binary>>, orig, start, len, acc)
       when c < 0x20 or c == ?" or c == ?\\ do
    acc = [esc(c) | flush(orig, start, len, acc)]
    escape(rest, orig, start + len + 1, 0, acc)
  end

  defp escape(<<c, rest::binary>>, orig, start, len, acc) when c < 0x80 do
    escape(rest, orig, start, len + 1, acc)
  end

  defp escape(<<0x2028::utf8, rest::binary>>, orig, start, len, acc) do
    escape(rest, orig, start + len + 3, 0, ["\\u2028" | flush(orig, start, len, acc)])
  end

  defp escape(<<0x2029::utf8, rest::binary>>, orig, start, len, acc) do
    escape(rest, orig, start + len + 3, 0, ["\\u2029" | flush(orig, start, len, acc)])
  end

  defp escape(<<cp::utf8, rest::binary>>, orig, start, len, acc) do
    escape(rest, orig, start, len + byte_size(<<cp::utf8>>), acc)
  end

  defp escape(<<_bad, rest::binary>>, orig, start, len, acc) do
    escape(rest, orig, start + len + 1, 0, ["\uFFFD" | flush(orig, start, len, acc)])
  end

  defp flush(_orig, _start, 0, acc), do: acc
  defp flush(orig, start, len, acc), do: [binary_part(orig, start, len) | acc]

  defp esc(?"), do: "\\\""
  defp esc(?\\), do: "\\\\"
  defp esc(?\n), do: "\\n"
  defp esc(?\r), do: "\\r"
  defp esc(?\t), do: "\\t"
  defp esc(?\b), do: "\\b"
  defp esc(?\f), do: "\\f"

  defp esc(c) do
    hex = Integer.to_string(c, 16)
    ["\\u", String.duplicate("0", 4 - byte_size(hex)), hex]
  end

  ## --- decoding ---------------------------------------------------------

  @doc """
  Decodes a JSON document. Objects become maps with string keys, numbers
  integers or floats. Returns `{:ok, term}` or `{:error, {:invalid_json, msg}}`.
  """
  @spec decode(iodata()) :: {:ok, term()} | {:error, {atom(), String.t()}}
  def decode(iodata) do
    bin = IO.iodata_to_binary(iodata)

    try do
      {v, rest} = value(skip_ws(bin))

      case skip_ws(rest) do
        "" -> {:ok, v}
        more -> bad(more)
      end
    catch
      {:live_cov_json_bad, ""} ->
        {:error, {:invalid_json, "unexpected end of input at byte #{byte_size(bin)}"}}

      {:live_cov_json_bad, rest} ->
        pos = byte_size(bin) - byte_size(rest)
        snippet = binary_part(rest, 0, min(20, byte_size(rest)))
        {:error, {:invalid_json, "unexpected input at byte #{pos}: #{inspect(snippet)}"}}
    end
  end

  defp bad(rest), do: throw({:live_cov_json_bad, rest})

  defp skip_ws(<<c, rest::binary>>) when c in [?\s, ?\t, ?\n, ?\r], do: skip_ws(rest)
  defp skip_ws(bin), do: bin

  defp value("null" <> rest), do: {nil, rest}
  defp value("true" <> rest), do: {true, rest}
  defp value("false" <> rest), do: {false, rest}
  defp value("\"" <> rest), do: str(rest, [])
  defp value("[" <> rest), do: array(skip_ws(rest), [])
  defp value("{" <> rest), do: object(skip_ws(rest), %{})
  defp value(<<c, _::binary>> = bin) when c == ?- or c in ?0..?9, do: number(bin)
  defp value(bin), do: bad(bin)

  defp array("]" <> rest, []), do: {[], rest}

  defp array(bin, acc) do
    {v, rest} = value(bin)

    case skip_ws(rest) do
      "," <> rest -> array(skip_ws(rest), [v | acc])
      "]" <> rest -> {Enum.reverse([v | acc]), rest}
      other -> bad(other)
    end
  end

  defp object("}" <> rest, acc) when acc == %{}, do: {acc, rest}

  defp object("\"" <> rest, acc) do
    {k, rest} = str(rest, [])

    case skip_ws(rest) do
      ":" <> rest ->
        {v, rest} = value(skip_ws(rest))
        acc = Map.put(acc, k, v)

        case skip_ws(rest) do
          "," <> rest -> object(skip_ws(rest), acc)
          "}" <> rest -> {acc, rest}
          other -> bad(other)
        end

      other ->
        bad(other)
    end
  end

  defp object(other, _acc), do: bad(other)

  defp str("\"" <> rest, acc), do: {IO.iodata_to_binary(Enum.reverse(acc)), rest}
  defp str("\\\"" <> rest, acc), do: str(rest, [?" | acc])
  defp str("\\\\" <> rest, acc), do: str(rest, [?\\ | acc])
  defp str("\\/" <> rest, acc), do: str(rest, [?/ | acc])
  defp str("\\b" <> rest, acc), do: str(rest, [?\b | acc])
  defp str("\\f" <> rest, acc), do: str(rest, [?\f | acc])
  defp str("\\n" <> rest, acc), do: str(rest, [?\n | acc])
  defp str("\\r" <> rest, acc), do: str(rest, [?\r | acc])
  defp str("\\t" <> rest, acc), do: str(rest, [?\t | acc])

  defp str(<<"\\u", a::binary-4, "\\u", b::binary-4, rest::binary>> = bin, acc) do
    with {hi, ""} when hi in 0xD800..0xDBFF <- Integer.parse(a, 16),
         {lo, ""} when lo in 0xDC00..0xDFFF <- Integer.parse(b, 16) do
      cp = 0x10000 + Bitwise.bsl(hi - 0xD800, 10) + (lo - 0xDC00)
      str(rest, [<<cp::utf8>> | acc])
    else
      _ -> unicode_escape(bin, acc)
    end
  end

  defp str("\\u" <> _ = bin, acc), do: unicode_escape(bin, acc)
  defp str(<<c, _::binary>> = bin, _acc) when c < 0x20 or c == ?\\, do: bad(bin)
  defp str(<<c::utf8, rest::binary>>, acc), do: str(rest, [<<c::utf8>> | acc])
  defp str(bin, _acc), do: bad(bin)

  defp unicode_escape(<<"\\u", h::binary-4, rest::binary>> = bin, acc) do
    case Integer.parse(h, 16) do
      {cp, ""} when cp in 0xD800..0xDFFF -> str(rest, ["\uFFFD" | acc])
      {cp, ""} -> str(rest, [<<cp::utf8>> | acc])
      _ -> bad(bin)
    end
  end

  defp unicode_escape(bin, _acc), do: bad(bin)

  defp number(bin) do
    case Regex.run(~r/\A-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/, bin) do
      [text | groups] ->
        rest = binary_part(bin, byte_size(text), byte_size(bin) - byte_size(text))
        frac = Enum.at(groups, 1, "")
        exp = Enum.at(groups, 2, "")

        if frac == "" and exp == "" do
          {String.to_integer(text), rest}
        else
          mantissa = if frac == "", do: String.replace(text, ~r/[eE]/, ".0e", global: false), else: text
          {String.to_float(mantissa), rest}
        end

      nil ->
        bad(bin)
    end
  end
end
