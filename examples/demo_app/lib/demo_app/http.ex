defmodule DemoApp.Http do
  @moduledoc "Builds `:httpd` responses with a JSON body (a tiny encoder: no dependencies)."

  @doc "The `:httpd` response for `status` with `payload` encoded as JSON."
  def response(status, payload) do
    body = json(payload)

    head = [
      code: status,
      content_type: ~c"application/json",
      content_length: body |> IO.iodata_length() |> Integer.to_charlist()
    ]

    {:response, head, body}
  end

  @doc "A 404 with a message."
  def not_found(message), do: {404, %{error: message}}

  @doc "Encodes maps, lists, strings, numbers, booleans, nil and atoms as JSON iodata."
  def json(map) when is_map(map) do
    fields = map |> Enum.sort() |> Enum.map(fn {k, v} -> [json(to_string(k)), ?:, json(v)] end)
    [?{, Enum.intersperse(fields, ?,), ?}]
  end

  def json(list) when is_list(list),
    do: [?[, list |> Enum.map(&json/1) |> Enum.intersperse(?,), ?]]

  def json(n) when is_integer(n), do: Integer.to_string(n)
  def json(b) when is_boolean(b), do: Atom.to_string(b)
  def json(nil), do: "null"
  def json(a) when is_atom(a), do: json(Atom.to_string(a))
  def json(s) when is_binary(s), do: [?", escape(s), ?"]

  defp escape(s) do
    for <<c::utf8 <- s>>, into: "" do
      case c do
        ?" -> "\\\""
        ?\\ -> "\\\\"
        c when c < 0x20 -> "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")
        c -> <<c::utf8>>
      end
    end
  end
end
