defmodule LiveCov.Instrument.Rewrite do
  @moduledoc false
  # The coverage rewrite of the running runtime: the compiler's own `sys_coverage` transform
  # where the runtime has it (OTP 27+, what its `cover` calls), LiveCov's OTP 25 rewrite
  # (`LiveCov.Instrument.Munge`) elsewhere. Same contract as `Munge.transform/2`.

  alias LiveCov.Instrument.{Munge, SysCoverage}

  @spec transform([tuple], module) ::
          {:ok, [tuple], [Munge.site()], [Munge.clause_info()]} | {:error, {atom, String.t()}}
  def transform(forms, module) do
    case LiveCov.Runtime.generation() do
      :otp27 -> SysCoverage.transform(forms, module)
      :otp25 -> Munge.transform(forms, module)
    end
  end
end
