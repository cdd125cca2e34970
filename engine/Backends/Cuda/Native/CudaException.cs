namespace MtlMoe.Engine.Backends.Cuda.Native;

/// <summary>A failed CUDA driver, cuBLAS or cuDNN call: names the native function and the library's error name.</summary>
public sealed class CudaException : Exception
{
    /// <summary>Creates the exception; the message is "<paramref name="function"/> failed: <paramref name="errorName"/> (detail) [in caller]".</summary>
    public CudaException(string library, string function, string errorName, int code, string? detail, string? caller)
        : base(Format(function, errorName, code, detail, caller))
    {
        Library = library;
        Function = function;
        ErrorName = errorName;
        Code = code;
    }

    /// <summary>"cuda", "cublas" or "cudnn".</summary>
    public string Library { get; }
    /// <summary>The native function that failed, e.g. "cuMemAlloc_v2".</summary>
    public string Function { get; }
    /// <summary>The C name of the error, e.g. "CUDA_ERROR_OUT_OF_MEMORY".</summary>
    public string ErrorName { get; }
    /// <summary>The numeric result code.</summary>
    public int Code { get; }

    static string Format(string function, string errorName, int code, string? detail, string? caller)
    {
        var s = $"{function} failed: {errorName} ({code})";
        if (!string.IsNullOrEmpty(detail)) s += $": {detail}";
        if (!string.IsNullOrEmpty(caller)) s += $" [in {caller}]";
        return s;
    }

    /// <summary>The native function named by a call expression: "CudaDriver.cuInit(0)" → "cuInit".</summary>
    internal static string FunctionFromExpression(string? expression)
    {
        if (string.IsNullOrWhiteSpace(expression)) return "?";
        var e = expression.Trim();
        var paren = e.IndexOf('(');
        if (paren >= 0) e = e[..paren];
        var dot = e.LastIndexOf('.');
        return dot >= 0 ? e[(dot + 1)..].Trim() : e.Trim();
    }

    /// <summary>"OutOfMemory" → "OUT_OF_MEMORY" (the C spelling of a PascalCase enum member).</summary>
    internal static string UpperSnake(string pascal)
    {
        var sb = new System.Text.StringBuilder(pascal.Length + 8);
        for (var i = 0; i < pascal.Length; i++)
        {
            var c = pascal[i];
            if (i > 0 && char.IsUpper(c) && !char.IsUpper(pascal[i - 1])) sb.Append('_');
            else if (i > 0 && char.IsDigit(c) && !char.IsDigit(pascal[i - 1])) sb.Append('_');
            sb.Append(char.ToUpperInvariant(c));
        }
        return sb.ToString();
    }
}
