using MtlMoe.Engine.Backends;

namespace MtlMoe.Engine;

public sealed partial class Tensor
{
    private static IBackend B(Device? device) => BackendRegistry.Get(device ?? Device.Cpu);

    /// <summary>Zeros of a shape.</summary>
    public static Tensor Zeros(int[] shape, DType dtype = DType.Float32, Device? device = null)
        => FromStorage(B(device).Allocate(dtype, Shapes.Count(shape)), shape);

    /// <summary>A tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(int[] shape, double value, DType dtype = DType.Float32, Device? device = null)
    {
        var t = Zeros(shape, dtype, device);
        if (value != 0) t.Backend.Fill(t.StorageView, value);
        return t;
    }

    /// <summary>Ones of a shape.</summary>
    public static Tensor Ones(int[] shape, DType dtype = DType.Float32, Device? device = null) => Full(shape, 1, dtype, device);

    /// <summary>A 0-d tensor.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32, Device? device = null) => Full([], value, dtype, device);

    /// <summary>Zeros with this tensor's shape, dtype and device.</summary>
    public Tensor ZerosLike() => Zeros(Shape, DType, Device);

    /// <summary>Ones with this tensor's shape, dtype and device.</summary>
    public Tensor OnesLike() => Full(Shape, 1, DType, Device);

    /// <summary>A tensor holding a copy of <paramref name="data"/> in <paramref name="shape"/> (default 1-d).</summary>
    public static Tensor FromArray<T>(T[] data, int[]? shape = null, Device? device = null) where T : unmanaged
    {
        shape ??= [data.Length];
        if (Shapes.Count(shape) != data.Length)
            throw new ShapeException($"from_array: {data.Length} elements do not fill shape {Shapes.Format(shape)}");
        return FromStorage(B(device).Upload<T>(data), (int[])shape.Clone());
    }

    /// <summary>0, 1, …, n-1.</summary>
    public static Tensor Arange(int n, DType dtype = DType.Float32, Device? device = null)
    {
        var d = new double[n];
        for (int i = 0; i < n; i++) d[i] = i;
        using var t = FromArray(d, null, device);
        return t.To(dtype);
    }

    /// <summary>Standard-normal samples from <paramref name="rng"/> (the default generator when null).</summary>
    public static Tensor RandN(int[] shape, Rng? rng = null, DType dtype = DType.Float32, Device? device = null)
    {
        rng ??= Rng.Default;
        var n = Shapes.Count(shape);
        if (dtype == DType.Float64)
        {
            var d = new double[n];
            for (int i = 0; i < n; i++) d[i] = rng.NextGaussian();
            return FromArray(d, shape, device);
        }
        var f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float)rng.NextGaussian();
        return FromSamples(f, shape, dtype, device);
    }

    /// <summary>Uniform samples in [lo, hi).</summary>
    public static Tensor Rand(int[] shape, Rng? rng = null, double lo = 0, double hi = 1, DType dtype = DType.Float32, Device? device = null)
    {
        rng ??= Rng.Default;
        var n = Shapes.Count(shape);
        if (dtype == DType.Float64)
        {
            var d = new double[n];
            for (int i = 0; i < n; i++) d[i] = rng.Uniform(lo, hi);
            return FromArray(d, shape, device);
        }
        var f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float)rng.Uniform(lo, hi);
        return FromSamples(f, shape, dtype, device);
    }

    // Float32 samples as a tensor of dtype, without leaving the float32 staging tensor behind.
    private static Tensor FromSamples(float[] samples, int[] shape, DType dtype, Device? device)
    {
        if (dtype == DType.Float32) return FromArray(samples, shape, device);
        using var staged = FromArray(samples, shape, device);
        return staged.To(dtype);
    }

    // ---------------- reading values back ----------------

    /// <summary>Row-major copy of the elements, in the tensor's own element type.</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        if (DTypeInfo.Of<T>() != DType)
            throw new InvalidOperationException($"ToArray<{typeof(T).Name}> on a {DType.Name()} tensor; cast with To(DType) first");
        var dst = new T[Count];
        Backend.Download<T>(StorageView, dst);
        return dst;
    }

    /// <summary>Row-major copy of the elements as doubles, whatever the dtype.</summary>
    public double[] ToDoubleArray()
    {
        if (DType == DType.Float64) return ToArray<double>();
        using var d = To(DType.Float64);
        return d.ToArray<double>();
    }

    /// <summary>Row-major copy as floats, whatever the dtype.</summary>
    public float[] ToFloatArray()
    {
        if (DType == DType.Float32) return ToArray<float>();
        using var d = To(DType.Float32);
        return d.ToArray<float>();
    }

    /// <summary>Row-major copy as longs (int dtypes and floats truncated).</summary>
    public long[] ToLongArray()
    {
        if (DType == DType.Int64) return ToArray<long>();
        using var d = To(DType.Int64);
        return d.ToArray<long>();
    }

    /// <summary>The value of a one-element tensor.</summary>
    public double Item()
    {
        if (Count != 1) throw new ShapeException($"item: tensor {Shapes.Format(Shape)} has {Count} elements, not 1");
        return ToDoubleArray()[0];
    }

    /// <summary>Converts to another dtype (a copy; the same tensor when the dtype already matches and <paramref name="copy"/> is false).</summary>
    public Tensor To(DType dtype, bool copy = true)
    {
        if (dtype == DType && !copy) return this;
        var r = FromStorage(dtype == DType ? Backend.Contiguous(StorageView) : Backend.Cast(StorageView, dtype), Shape);
        if (dtype == DType && dtype.IsFloat()) Autograd.Graph.Record(r, "copy", [this], g => [g]);
        else if (dtype.IsFloat() && DType.IsFloat()) Autograd.Graph.Record(r, "cast", [this], g => [g.To(DType)]);
        return r;
    }

    /// <summary>Moves (copies) the tensor to a device; gradients flow back across.</summary>
    public Tensor To(Device device)
    {
        if (device == Device) return this;
        var target = BackendRegistry.Get(device);
        using var dense = Contiguous();
        Storage s = DType switch
        {
            DType.Float32 => target.Upload<float>(dense.ToArray<float>()),
            DType.Float64 => target.Upload<double>(dense.ToArray<double>()),
            DType.Int32 => target.Upload<int>(dense.ToArray<int>()),
            DType.Int64 => target.Upload<long>(dense.ToArray<long>()),
            DType.BFloat16 => target.Upload<BFloat16>(dense.ToArray<BFloat16>()),
            _ => throw new NotSupportedException($"to_device: dtype {DType.Name()} cannot be moved"),
        };
        var src = Device;
        var r = FromStorage(s, Shape);
        Autograd.Graph.Record(r, "to_device", [this], g => [g.To(src)]);
        return r;
    }

    /// <summary>A dense copy when the layout is not contiguous; otherwise a view of the same storage.</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return ViewOfWithGrad(Layout, "contiguous");
        var r = FromStorage(Backend.Contiguous(StorageView), Shape);
        Autograd.Graph.Record(r, "contiguous", [this], g => [g]);
        return r;
    }

    /// <summary>A copy that shares nothing with this tensor.</summary>
    public Tensor Clone() => To(DType, copy: true);

    /// <summary>A view of the same storage that autograd does not track.</summary>
    public Tensor Detach() => ViewOf(Layout);
}
