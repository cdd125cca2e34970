using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.Backends;

namespace MtlMoe.Engine;

/// <summary>
/// An n-dimensional array on a device: a shared <see cref="Storage"/> seen through a <see cref="Layout"/>,
/// with reverse-mode autograd. Tensors are <see cref="IDisposable"/>; a <see cref="DisposeScope"/>
/// disposes the temporaries of a step. Ops live in <see cref="Ops"/> and as instance methods.
/// </summary>
public sealed partial class Tensor : IDisposable
{
    private Storage? _storage;
    private bool _requiresGrad;

    internal DisposeScope? OwningScope;

    internal Tensor(Storage storage, Layout layout)
    {
        _storage = storage;
        Layout = layout;
        MemoryStats.OnTensorCreated();
        DisposeScope.Current?.Register(this);
    }

    /// <summary>
    /// A contiguous tensor of <paramref name="shape"/> over a fresh storage — one a backend primitive returned, or a
    /// filled <see cref="Backends.Cpu.CpuStorage.Rent"/> buffer — taking over its single reference (disposing the tensor
    /// releases it). The storage must hold exactly the shape's element count.
    /// </summary>
    public static Tensor FromStorage(Storage storage, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(storage);
        int count = Shapes.Count(shape);
        if (storage.Length != count)
            throw new ShapeException($"from_storage: a storage of {storage.Length} elements cannot be a tensor of shape {Shapes.Format(shape)} ({count} elements)");
        return new(storage, Layout.Contiguous(shape));
    }

    /// <summary>A new tensor sharing this one's storage through another layout.</summary>
    internal Tensor ViewOf(Layout layout)
    {
        var s = Storage;
        s.AddRef();
        return new Tensor(s, layout);
    }

    /// <summary>The storage; throws when the tensor was disposed.</summary>
    public Storage Storage => _storage ?? throw new ObjectDisposedException(nameof(Tensor), $"tensor {Shapes.Format(Layout.Shape)} was used after Dispose (was it freed by a DisposeScope?)");

    /// <summary>Shape, strides and offset into the storage.</summary>
    public Layout Layout { get; private set; }

    /// <summary>This tensor's storage seen through its layout: how it is handed to an <see cref="Backends.IBackend"/> primitive.</summary>
    public Backends.StorageView StorageView => new(Storage, Layout);

    /// <summary>
    /// Swaps the storage under this tensor (a module moving to another device keeps its parameter
    /// objects, so references held by optimizers stay valid).
    /// </summary>
    internal void ReplaceStorage(Storage storage, Layout layout)
    {
        var old = Storage;
        _storage = storage;
        Layout = layout;
        old.Release();
    }

    /// <summary>Size of each dim (do not mutate).</summary>
    public int[] Shape => Layout.Shape;

    /// <summary>Number of dims.</summary>
    public int Rank => Layout.Rank;

    /// <summary>Number of elements.</summary>
    public int Count => Layout.Count;

    /// <summary>Element type.</summary>
    public DType DType => Storage.DType;

    /// <summary>Device of the storage.</summary>
    public Device Device => Storage.Device;

    /// <summary>The backend computing on this tensor's device.</summary>
    public IBackend Backend => BackendRegistry.Get(Device);

    /// <summary>True after <see cref="Dispose"/>.</summary>
    public bool IsDisposed => _storage is null;

    /// <summary>True when the layout is dense row-major.</summary>
    public bool IsContiguous => Layout.IsContiguous;

    /// <summary>Size of dim <paramref name="dim"/> (negative counts from the end).</summary>
    public int Size(int dim) => Shape[Shapes.NormalizeDim(dim, Rank, "size")];

    /// <summary>Optional name, used by modules and in messages.</summary>
    public string? Name { get; set; }

    // ---------------- autograd state ----------------

    /// <summary>Whether gradients flow to this tensor. Settable on leaves only.</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (GradFn is not null && !value) throw new InvalidOperationException("RequiresGrad can only be cleared on a leaf tensor; use Detach()");
            if (value && !DType.IsFloat()) throw new InvalidOperationException($"only float tensors can require gradients, not {DType.Name()}");
            _requiresGrad = value;
        }
    }

    /// <summary>Accumulated gradient of a leaf after <see cref="Backward"/>; owned by this tensor.</summary>
    public Tensor? Grad { get; set; }

    /// <summary>The node that produced this tensor, null for leaves.</summary>
    public GradNode? GradFn { get; internal set; }

    /// <summary>True when no recorded op produced this tensor.</summary>
    public bool IsLeaf => GradFn is null;

    internal void MarkRequiresGrad() => _requiresGrad = true;

    /// <summary>Sets <see cref="RequiresGrad"/> and returns this tensor.</summary>
    public Tensor RequireGrad(bool value = true) { RequiresGrad = value; return this; }

    // ---------------- lifetime ----------------

    // Recorded graph nodes that still need this tensor (its own node and the nodes it feeds).
    private int _graphRefs;
    private bool _disposeRequested;

    internal void AddGraphRef() => _graphRefs++;

    internal void ReleaseGraphRef()
    {
        if (--_graphRefs == 0 && _disposeRequested) DisposeNow();
    }

    /// <summary>
    /// Releases the storage reference (the memory goes back when no view holds it). A tensor that an
    /// un-run backward still needs is released once that backward has run, so composite ops may
    /// dispose their intermediates freely.
    /// </summary>
    public void Dispose()
    {
        if (_graphRefs > 0) { _disposeRequested = true; return; }
        DisposeNow();
    }

    /// <summary>Releases the storage now, whatever graph still refers to it (dispose scopes do this at the end of a step).</summary>
    internal void DisposeNow()
    {
        var s = _storage;
        if (s is null) return;
        _storage = null;
        OwningScope = null;
        GradFn = null;
        s.Release();
        MemoryStats.OnTensorDisposed();
        GC.SuppressFinalize(this);
    }

    /// <summary>Removes this tensor from its dispose scope so it lives until disposed by hand.</summary>
    public Tensor DetachFromScope() { OwningScope = null; return this; }

    /// <summary>Hands this tensor to the scope around the current one (or to no scope).</summary>
    public Tensor MoveToOuterScope()
    {
        var outer = OwningScope?.Outer;
        OwningScope = null;
        outer?.Register(this);
        return this;
    }

    /// <summary>"Tensor[2, 3] float32 cpu".</summary>
    public override string ToString() =>
        _storage is null ? $"Tensor{Shapes.Format(Layout.Shape)} (disposed)" : $"Tensor{Shapes.Format(Shape)} {DType.Name()} {Device}{(RequiresGrad ? " requires_grad" : "")}";
}
