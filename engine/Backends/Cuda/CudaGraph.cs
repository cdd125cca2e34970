using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// A captured CUDA graph: <see cref="Capture"/> records everything one call of a body (a whole training step) queues on
/// the device's stream — kernels, cuBLAS and cuDNN calls, device copies and memsets — without running it, and
/// <see cref="Replay"/> runs the recording with one launch. What a replay sees is what was captured:
/// <list type="bullet">
/// <item>the same device addresses: inputs must be written into the tensors the capture read (static inputs) and
/// outputs read from the tensors it wrote, which must stay alive (and must not be disposed) while the graph lives;</item>
/// <item>the same scalars: kernel arguments such as a learning rate are frozen into the graph (a schedule that changes
/// them needs eager steps or a new capture);</item>
/// <item>the same shapes and the same control flow: nothing in the body may read device values on the host — a host
/// copy or synchronisation inside the capture throws <see cref="GraphCaptureException"/> (the dropless MoE's routing
/// reads per-expert counts, so a step with an MoE layer is not capturable whole: capture the backbone).</item>
/// </list>
/// Memory: the caching allocator serves the capture from its cache only (run the body eagerly once or twice first so
/// that every block size it needs is cached, and the cuDNN algorithm searches are done); every block the capture used
/// stays reserved for the graph until <see cref="Dispose"/>.
/// </summary>
public sealed class CudaGraph : IDisposable
{
    readonly CudaContext _context;
    GraphPool? _pool;
    CuGraph _graph;
    CuGraphExec _exec;

    CudaGraph(CudaContext context, GraphPool pool, CuGraph graph, CuGraphExec exec, int nodes)
    {
        _context = context; _pool = pool; _graph = graph; _exec = exec; NodeCount = nodes;
    }

    /// <summary>Nodes of the captured graph (kernels, library calls' kernels, memsets, copies).</summary>
    public int NodeCount { get; }

    /// <summary>Device blocks reserved for the graph.</summary>
    public int ReservedBlocks => _pool?.BlockCount ?? 0;

    /// <summary>
    /// Records what <paramref name="body"/> queues on <paramref name="backend"/>'s stream into a graph and instantiates it.
    /// Nothing runs during the capture. A body that throws, reads device values or needs memory the cache cannot give
    /// ends the capture, discards it and rethrows.
    /// </summary>
    public static unsafe CudaGraph Capture(CudaBackend backend, Action body)
    {
        var ctx = backend.Context;
        ctx.MakeCurrent();
        var pool = ctx.Allocator.BeginCapture();
        CuGraph graph = default;
        bool capturing = false;
        try
        {
            CudaDriver.Check(CudaDriver.cuStreamBeginCapture_v2(ctx.Stream, CuStreamCaptureMode.ThreadLocal));
            capturing = true;
            Exception? failure = null;
            try { body(); }
            catch (Exception e) { failure = e; }
            capturing = false;
            var end = CudaDriver.cuStreamEndCapture(ctx.Stream, out graph);
            ctx.Allocator.EndCapture(pool);
            if (failure is not null) throw failure is GraphCaptureException ? failure : new GraphCaptureException($"cuda:{ctx.Index}: the captured body failed: {failure.Message}", failure);
            if (end != CuResult.Success)
                throw new GraphCaptureException($"cuda:{ctx.Index}: cuStreamEndCapture returned {CudaDriver.Describe(end).Name}: a call inside the body broke the capture " +
                    "(an allocation, a synchronisation or a legacy-stream call); see the CUDA graph notes in docs/gpu.md");
            nuint count = 0;
            CudaDriver.Check(CudaDriver.cuGraphGetNodes(graph, null, ref count));
            CudaDriver.Check(CudaDriver.cuGraphInstantiateWithFlags(out var exec, graph, 0));
            return new CudaGraph(ctx, pool, graph, exec, (int)count);
        }
        catch
        {
            if (capturing) { CudaDriver.cuStreamEndCapture(ctx.Stream, out var g); if (g.Handle != 0) CudaDriver.cuGraphDestroy(g); }
            if (graph.Handle != 0) CudaDriver.cuGraphDestroy(graph);
            ctx.Allocator.ReleasePool(pool);
            throw;
        }
    }

    /// <summary>Queues one run of the graph on the stream (asynchronous, like any other work).</summary>
    public void Replay()
    {
        if (_exec.Handle == 0) throw new ObjectDisposedException(nameof(CudaGraph));
        _context.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuGraphLaunch(_exec, _context.Stream));
    }

    /// <summary>Destroys the graph (after the stream has finished it) and gives its reserved blocks back to the cache.</summary>
    public void Dispose()
    {
        if (_exec.Handle == 0) return;
        _context.Synchronize();
        CudaDriver.Check(CudaDriver.cuGraphExecDestroy(_exec));
        CudaDriver.Check(CudaDriver.cuGraphDestroy(_graph));
        _exec = default; _graph = default;
        if (_pool is { } p) _context.Allocator.ReleasePool(p);
        _pool = null;
    }
}
