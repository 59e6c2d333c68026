// autochip core: controller, buffers, im2col address generation and post-processing around an
// output-stationary array (module core_array, rendered from pe_array_os.v.j2 with core_pe).
//
// The controller runs a program of layer descriptors (DESC_WORDS x 32-bit words, little endian)
// fetched from DRAM, one after the other, until a descriptor with op 0:
//   op 1 (compute): conv / linear as im2col GEMM. Rows of the array = R consecutive output
//        pixels, columns = C output channels of one group, reduction = Cg*KR*KS. The layer's
//        weight tiles are processed in passes that fit the weight, parameter and output
//        buffers; each pass sweeps all pixel tiles, post-processes every accumulator
//        (bias, requantisation or binary threshold) into the output buffer and writes it back.
//   op 2 (vector): max pooling, window sum + rescale (average pooling), or the two-input
//        rescale of a residual add, one window element per cycle.
// Buffers: ifmap = R copies of one byte RAM (each array row reads its own im2col address every
// cycle), weight = C byte RAMs read as one C-lane word, param = per-channel records, ofmap =
// one byte RAM. All tensors in DRAM are int8 NCHW.
`default_nettype none
// Lint waiver: address and index arithmetic is 32-bit and each buffer takes the low bits of its
// address (the compiler guarantees every address fits), values are clamped to a byte before the
// ofmap write and record bytes 10..15 are padding, so upper bits are deliberately unused.
/* verilator lint_off UNUSEDSIGNAL */
module core_main #(
    parameter integer R        = 8,
    parameter integer C        = 8,
    parameter integer A_BITS   = 8,
    parameter integer W_BITS   = 8,
    parameter integer ACC_BITS = 32,
    parameter integer IF_DEPTH = 1024,
    parameter integer IF_ADDR  = 10,
    parameter integer W_DEPTH  = 256,
    parameter integer W_ADDR   = 8,
    parameter integer O_DEPTH  = 1024,
    parameter integer O_ADDR   = 10,
    parameter integer P_DEPTH  = 64,
    parameter integer P_ADDR   = 6
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        start,
    input  wire [31:0] prog_addr,
    output wire        busy,
    output reg         done,
    output reg  [31:0] cycles,
    output reg  [31:0] layers,
    // DMA
    output reg         dma_valid,
    output reg         dma_write,
    output reg  [31:0] dma_addr,
    output reg  [31:0] dma_len,
    input  wire        dma_done,
    input  wire        rd_valid,
    input  wire [7:0]  rd_data,
    input  wire [31:0] rd_index,
    input  wire        src_re,
    input  wire [31:0] src_index,
    output wire [7:0]  src_data,
    // array
    output wire                    arr_en,
    output wire                    arr_valid,
    output wire                    arr_last,
    output wire [R*A_BITS-1:0]     arr_a,
    output wire [C*(W_BITS+1)-1:0] arr_b,
    input  wire                    arr_out_valid,
    input  wire                    arr_out_last,
    input  wire [(R>1?$clog2(R):1)-1:0] arr_out_row,
    input  wire [C*ACC_BITS-1:0]   arr_out_data
);
    localparam integer DESC_WORDS = 48;
    localparam integer PREC_BYTES = 16;   // bytes of one per-channel parameter record
    localparam integer FLUSH      = 6;    // cycles to drain the post-processing pipelines
    // descriptor word indices (autochip.builder.program.FIELDS); kt and cg are carried for
    // the host (plan.json) and not read by the RTL.
    /* verilator lint_off UNUSEDPARAM */
    localparam integer D_OP = 0, D_IN_ADDR = 1, D_IN_LEN = 2, D_IN2_ADDR = 3, D_OUT_ADDR = 4,
        D_W_ADDR = 5, D_P_ADDR = 6, D_H = 7, D_W = 8, D_HW = 9, D_CG_HW = 10, D_T = 11,
        D_KR = 12, D_KS = 13, D_PAD = 14, D_PQ = 15, D_Q = 16, D_A1_X = 17, D_A1_OX = 18,
        D_A1_OY = 19, D_A1_BASE = 20, D_AR_X = 21, D_AR_OX = 22, D_AR_OY = 23, D_AR_BASE = 24,
        D_WRAP_OX = 25, D_SH = 26, D_WRAP_BASE = 27, D_OY0 = 28, D_OX0 = 29, D_BASE0 = 30,
        D_NTILES = 31, D_KT = 32, D_KG = 33, D_TPP = 34, D_LO = 35, D_HI = 36, D_MULT0 = 37,
        D_MULT1 = 38, D_SHIFT = 39, D_C = 40, D_P = 41, D_WSTEP = 42, D_SW = 43,
        D_TILE_W = 44, D_NPT = 45, D_CG = 46, D_C_PQ = 47;
    /* verilator lint_on UNUSEDPARAM */

    localparam [4:0] S_IDLE = 5'd0, S_FETCH = 5'd1, S_FETCH_W = 5'd2, S_DECODE = 5'd3,
        S_IN = 5'd4, S_IN_W = 5'd5, S_IN2 = 5'd6, S_IN2_W = 5'd7, S_PASS = 5'd8,
        S_LW = 5'd9, S_LW_W = 5'd10, S_LP = 5'd11, S_LP_W = 5'd12, S_INIT = 5'd13,
        S_TILE = 5'd14, S_STREAM = 5'd15, S_DRAIN = 5'd16, S_NEXT_TILE = 5'd17,
        S_ADV = 5'd18, S_FLUSH = 5'd19, S_WB = 5'd20, S_WB_W = 5'd21, S_NEXT = 5'd22,
        S_VRUN = 5'd23, S_VWB = 5'd24, S_VWB_W = 5'd25;

    reg [4:0]  st;
    reg [31:0] desc [0:DESC_WORDS-1];
    reg [31:0] pc;

    wire [1:0]  op        = desc[D_OP][1:0];
    wire        m_adder   = desc[D_OP][2];
    wire        m_thresh  = desc[D_OP][3];
    wire [1:0]  vmode     = desc[D_OP][5:4];
    wire        nobounds  = desc[D_OP][6];
    wire signed [31:0] d_h  = desc[D_H];
    wire signed [31:0] d_w  = desc[D_W];
    wire signed [31:0] d_lo = desc[D_LO];
    wire signed [31:0] d_hi = desc[D_HI];

    assign busy = (st != S_IDLE);


    // ---------------------------------------------------------------- descriptor loading
    integer di;
    always @(posedge clk) begin
        if (rst) begin
            for (di = 0; di < DESC_WORDS; di = di + 1) desc[di] <= 32'd0;
        end else if (rd_valid && (st == S_FETCH_W)) begin
            desc[rd_index[7:2]][rd_index[1:0]*8 +: 8] <= rd_data;
        end
    end

    // ---------------------------------------------------------------- buffers
    // ifmap: R copies, written together by the DMA, read per array row
    reg  [31:0]          if_wofs;   // ifmap offset of the load in flight (0 or IN_LEN)
    wire                 if_we = rd_valid & ((st == S_IN_W) | (st == S_IN2_W));
    wire [IF_ADDR-1:0]   if_wa = if_wofs[IF_ADDR-1:0] + rd_index[IF_ADDR-1:0];
    wire [R*IF_ADDR-1:0] if_ra;
    wire [R-1:0]         if_re;
    wire [R*8-1:0]       if_rd;
    // weight: C byte banks
    reg  [31:0]          wl_lane, wl_word;
    wire                 w_we = rd_valid & (st == S_LW_W);
    reg  [W_ADDR-1:0]    w_ra;
    wire                 w_re;
    wire [C*8-1:0]       w_rd;
    // parameters: one byte RAM per record byte 0..9
    wire                 p_we = rd_valid & (st == S_LP_W);
    reg  [P_ADDR-1:0]    p_ra;
    wire [10*8-1:0]      p_rd;
    // ofmap
    reg                  o_we;
    reg  [O_ADDR-1:0]    o_wa;
    reg  [7:0]           o_wd;
    reg  [31:0]          wb_ofs;    // ofmap offset of the write-back in flight

    genvar gi;
    generate
        for (gi = 0; gi < R; gi = gi + 1) begin : g_if
            core_ram #(.WIDTH(8), .DEPTH(IF_DEPTH), .ADDR(IF_ADDR)) u_ram (
                .clk(clk), .we(if_we), .wa(if_wa), .wd(rd_data),
                .re(if_re[gi]), .ra(if_ra[gi*IF_ADDR +: IF_ADDR]), .rd(if_rd[gi*8 +: 8]));
        end
        for (gi = 0; gi < C; gi = gi + 1) begin : g_w
            core_ram #(.WIDTH(8), .DEPTH(W_DEPTH), .ADDR(W_ADDR)) u_ram (
                .clk(clk), .we(w_we & (wl_lane == gi)), .wa(wl_word[W_ADDR-1:0]),
                .wd(rd_data), .re(w_re), .ra(w_ra), .rd(w_rd[gi*8 +: 8]));
        end
        for (gi = 0; gi < 10; gi = gi + 1) begin : g_p
            core_ram #(.WIDTH(8), .DEPTH(P_DEPTH), .ADDR(P_ADDR)) u_ram (
                .clk(clk), .we(p_we & (rd_index[3:0] == gi)),
                .wa(rd_index[P_ADDR+3:4]), .wd(rd_data), .re(1'b1), .ra(p_ra),
                .rd(p_rd[gi*8 +: 8]));
        end
    endgenerate

    core_ram #(.WIDTH(8), .DEPTH(O_DEPTH), .ADDR(O_ADDR)) u_ofmap (
        .clk(clk), .we(o_we), .wa(o_wa), .wd(o_wd),
        .re(src_re), .ra(wb_ofs[O_ADDR-1:0] + src_index[O_ADDR-1:0]), .rd(src_data));

    always @(posedge clk) begin
        if (rst || st == S_LW) begin
            wl_lane <= 32'd0;
            wl_word <= 32'd0;
        end else if (w_we) begin
            if (wl_lane == C - 1) begin
                wl_lane <= 32'd0;
                wl_word <= wl_word + 32'd1;
            end else begin
                wl_lane <= wl_lane + 32'd1;
            end
        end
    end

    // ---------------------------------------------------------------- compute-op state
    reg  [31:0] t_ps;          // first weight tile of the pass
    reg  [31:0] np;            // tiles in this pass
    reg  [31:0] g_ps, ktc_ps, kg0_ps, cb_ps;   // pass start: group, kt*C, g*KG, g*CG_HW
    reg  [31:0] tip;           // tile in pass
    reg  [31:0] g_ktc, g_kg0, g_cb, g_g;       // current tile: kt*C, g*KG, input channel base
    reg  [31:0] p0;            // first pixel of the pixel tile
    reg  [31:0] pt;            // pixel tile index
    reg  [31:0] icnt;          // lane init counter
    reg  [31:0] j, cl, kr, ks, woff, cofs;     // beat counters
    reg  [31:0] wptr;          // tip * T
    reg  [31:0] obase;         // tip * C * PQ
    reg  [31:0] wb_lane, wb_tip, wb_ktc, wb_kg0, wb_g;
    reg  [31:0] fl;            // flush counter
    wire [31:0] kleft   = desc[D_KG] - g_ktc;
    wire [31:0] wkleft  = desc[D_KG] - wb_ktc;
    wire        last_kt = (g_ktc + C >= desc[D_KG]);

    // lanes: output pixel coordinates of array row i
    reg signed [31:0] lx [0:R-1];
    reg signed [31:0] lox [0:R-1];
    reg signed [31:0] loy [0:R-1];
    reg signed [31:0] lb [0:R-1];

    // vector engine window walk (declared here: lane 0's read port is shared)
    reg  [31:0] vc, vy, vx, vr, vs, vcb, vrow, vwoff, vout;
    reg signed [31:0] voy, vox;
    wire [31:0] v_addr = vcb + vrow + vwoff;

    // beat issue (cycle 0) and data (cycle 1)
    wire       issue = (st == S_STREAM);
    reg        iss_d, last_d;
    reg  [R-1:0] lv_d;
    reg  [7:0] pad_d;

    generate
        for (gi = 0; gi < R; gi = gi + 1) begin : g_lane
            wire signed [31:0] iy = loy[gi] + $signed(kr);
            wire signed [31:0] ix = lox[gi] + $signed(ks);
            wire inb = (iy >= 0) & (iy < d_h) & (ix >= 0) & (ix < d_w);
            wire [31:0] ad = g_cb + cofs + lb[gi] + woff;
            assign if_ra[gi*IF_ADDR +: IF_ADDR] = (gi == 0 && st == S_VRUN) ? v_addr[IF_ADDR-1:0]
                                                                           : ad[IF_ADDR-1:0];
            assign if_re[gi] = (issue & inb) | ((gi == 0) && st == S_VRUN);
            assign arr_a[gi*A_BITS +: A_BITS] = lv_d[gi] ? if_rd[gi*8 +: A_BITS]
                                                         : pad_d[A_BITS-1:0];
            // step this lane: by one pixel (init from lane gi-1) or by R pixels (tile advance)
            wire        by1 = (st == S_INIT);
            wire signed [31:0] sx  = (gi == 0 || !by1) ? lx[gi]  : lx[gi-1];
            wire signed [31:0] sox = (gi == 0 || !by1) ? lox[gi] : lox[gi-1];
            wire signed [31:0] soy = (gi == 0 || !by1) ? loy[gi] : loy[gi-1];
            wire signed [31:0] sb  = (gi == 0 || !by1) ? lb[gi]  : lb[gi-1];
            wire signed [31:0] nx  = sx + $signed(by1 ? desc[D_A1_X] : desc[D_AR_X]);
            wire signed [31:0] nox = sox + $signed(by1 ? desc[D_A1_OX] : desc[D_AR_OX]);
            wire signed [31:0] noy = soy + $signed(by1 ? desc[D_A1_OY] : desc[D_AR_OY]);
            wire signed [31:0] nb  = sb + $signed(by1 ? desc[D_A1_BASE] : desc[D_AR_BASE]);
            wire wrap = (nx >= $signed(desc[D_Q]));
            always @(posedge clk) begin
                if (st == S_INIT && icnt == gi) begin
                    if (gi == 0) begin
                        lx[gi]  <= 32'sd0;
                        lox[gi] <= $signed(desc[D_OX0]);
                        loy[gi] <= $signed(desc[D_OY0]);
                        lb[gi]  <= $signed(desc[D_BASE0]);
                    end else begin
                        lx[gi]  <= wrap ? nx - $signed(desc[D_Q]) : nx;
                        lox[gi] <= wrap ? nox - $signed(desc[D_WRAP_OX]) : nox;
                        loy[gi] <= wrap ? noy + $signed(desc[D_SH]) : noy;
                        lb[gi]  <= wrap ? nb + $signed(desc[D_WRAP_BASE]) : nb;
                    end
                end else if (st == S_ADV) begin
                    lx[gi]  <= wrap ? nx - $signed(desc[D_Q]) : nx;
                    lox[gi] <= wrap ? nox - $signed(desc[D_WRAP_OX]) : nox;
                    loy[gi] <= wrap ? noy + $signed(desc[D_SH]) : noy;
                    lb[gi]  <= wrap ? nb + $signed(desc[D_WRAP_BASE]) : nb;
                end
            end
            always @(posedge clk) begin
                if (rst) begin
                    lv_d[gi] <= 1'b0;
                end else begin
                    lv_d[gi] <= issue & inb;
                end
            end
        end
        for (gi = 0; gi < C; gi = gi + 1) begin : g_col
            assign arr_b[gi*(W_BITS+1) +: W_BITS+1] = {m_adder, w_rd[gi*8 +: W_BITS]};
        end
    endgenerate

    assign w_re = issue;
    always @(*) begin
        w_ra = wptr[W_ADDR-1:0] + j[W_ADDR-1:0];
    end

    always @(posedge clk) begin
        if (rst) begin
            iss_d <= 1'b0;
            last_d <= 1'b0;
            pad_d <= 8'd0;
        end else begin
            iss_d <= issue;
            last_d <= issue & (j == desc[D_T] - 32'd1);
            pad_d <= desc[D_PAD][7:0];
        end
    end
    assign arr_valid = iss_d;
    assign arr_last  = last_d;

    // ---------------------------------------------------------------- array read-out
    reg               stall;
    reg  [C*ACC_BITS-1:0] row_reg;
    reg  [31:0]       prow;
    reg               row_last;
    reg  [31:0]       sc;
    reg  [31:0]       s_oaddr;
    reg               tile_done;
    assign arr_en = ~stall;
    wire  take = arr_out_valid & ~stall & (st == S_DRAIN);
    wire  ser  = stall;

    always @(posedge clk) begin
        if (rst) begin
            stall <= 1'b0;
            row_reg <= {C*ACC_BITS{1'b0}};
            prow <= 32'd0;
            row_last <= 1'b0;
            sc <= 32'd0;
            s_oaddr <= 32'd0;
            tile_done <= 1'b0;
        end else begin
            tile_done <= 1'b0;
            if (take) begin
                stall <= 1'b1;
                row_reg <= arr_out_data;
                prow <= {{(32-(R>1?$clog2(R):1)){1'b0}}, arr_out_row};
                row_last <= arr_out_last;
                sc <= 32'd0;
                s_oaddr <= obase + p0 + {{(32-(R>1?$clog2(R):1)){1'b0}}, arr_out_row};
            end else if (stall) begin
                sc <= sc + 32'd1;
                s_oaddr <= s_oaddr + desc[D_PQ];
                if (sc == C - 1) begin
                    stall <= 1'b0;
                    tile_done <= row_last;
                end
            end
        end
    end

    // post-processing pipeline: param read, bias, multiply / compare, round-shift, clamp
    reg               q1_v, q2_v, q3_v, q4_v;
    reg  [O_ADDR-1:0] q1_a, q2_a, q3_a, q4_a;
    reg  signed [31:0] q1_acc, q2_sum, q2_mult;
    reg  [7:0]        q2_shift, q3_shift;
    reg               q2_flip, q3_bit;
    reg  signed [63:0] q3_prod, q4_val;
    wire signed [ACC_BITS-1:0] ser_acc = row_reg[sc[7:0]*ACC_BITS +: ACC_BITS];
    wire ser_valid = ser & (sc < kleft) & (p0 + prow < desc[D_PQ]);
    wire signed [31:0] p_bias = p_rd[31:0];
    wire signed [31:0] p_mult = p_rd[63:32];

    always @(*) begin
        p_ra = tip[P_ADDR-1:0] * C[P_ADDR-1:0] + sc[P_ADDR-1:0];
    end

    always @(posedge clk) begin
        if (rst) begin
            q1_v <= 1'b0; q2_v <= 1'b0; q3_v <= 1'b0; q4_v <= 1'b0;
        end else begin
            q1_v <= ser_valid;
            q2_v <= q1_v;
            q3_v <= q2_v;
            q4_v <= q3_v;
        end
        q1_a <= s_oaddr[O_ADDR-1:0];
        q1_acc <= ser_acc;
        q2_a <= q1_a;
        q2_sum <= q1_acc + p_bias;
        q2_mult <= p_mult;
        q2_shift <= p_rd[71:64];
        q2_flip <= p_rd[72];
        q3_a <= q2_a;
        q3_prod <= q2_sum * q2_mult;
        q3_bit <= (q2_sum >= q2_mult) ^ q2_flip;
        q3_shift <= q2_shift;
        q4_a <= q3_a;
        q4_val <= m_thresh ? (q3_bit ? 64'sd1 : -64'sd1)
                           : ((q3_prod + (64'sd1 <<< (q3_shift - 8'd1))) >>> q3_shift);
    end

    // ---------------------------------------------------------------- vector engine
    wire signed [31:0] viy = voy + $signed(vr);
    wire signed [31:0] vix = vox + $signed(vs);
    wire v_inb = nobounds | ((viy >= 0) & (viy < d_h) & (vix >= 0) & (vix < d_w));
    wire v_first = (vr == 0) & (vs == 0);
    wire v_lastw = (vr == desc[D_KR] - 1) & (vs == desc[D_KS] - 1);
    wire v_end = v_lastw & (vx == desc[D_Q] - 1) & (vy == desc[D_P] - 1) & (vc == desc[D_C] - 1);
    reg        v1_v, v1_first, v1_last, v1_in, v1_m1;
    reg  [31:0] v1_out;
    reg signed [63:0] vacc;
    reg        v2_v;
    reg [31:0] v2_out;
    wire signed [7:0]  v_x = if_rd[7:0];
    wire signed [63:0] v_term = $signed(v_x) * $signed(v1_m1 ? desc[D_MULT1] : desc[D_MULT0]);
    wire signed [63:0] v_x64 = {{56{v_x[7]}}, v_x};
    wire signed [63:0] v_init = (vmode == 2'd0) ? -64'sd256 : 64'sd0;
    wire signed [63:0] v_base = v1_first ? v_init : vacc;
    wire signed [63:0] v_next = !v1_in ? v_base
                              : (vmode == 2'd0) ? ((v_x64 > v_base) ? v_x64 : v_base)
                              : v_base + v_term;
    wire [7:0] vsh = desc[D_SHIFT][7:0];

    always @(posedge clk) begin
        if (rst) begin
            v1_v <= 1'b0;
            v2_v <= 1'b0;
        end else begin
            v1_v <= (st == S_VRUN);
            v2_v <= v1_v & v1_last;
        end
        v1_first <= v_first;
        v1_last <= v_lastw;
        v1_in <= v_inb;
        v1_m1 <= (vr != 0);
        v1_out <= vout;
        if (v1_v) vacc <= v_next;
        v2_out <= v1_out;
    end

    // ofmap write port: compute pipeline or vector engine, then clamp to [lo, hi]
    wire signed [63:0] vres = (vmode == 2'd0) ? vacc : ((vacc + (64'sd1 <<< (vsh - 8'd1))) >>> vsh);
    wire signed [63:0] wval = v2_v ? vres : q4_val;
    wire signed [63:0] lo64 = {{32{d_lo[31]}}, d_lo};
    wire signed [63:0] hi64 = {{32{d_hi[31]}}, d_hi};
    wire signed [63:0] cval = (wval < lo64) ? lo64 : (wval > hi64) ? hi64 : wval;
    always @(*) begin
        o_we = q4_v | v2_v;
        o_wa = v2_v ? v2_out[O_ADDR-1:0] : q4_a;
        o_wd = (q4_v & m_thresh) ? wval[7:0] : cval[7:0];
    end

    // ---------------------------------------------------------------- main sequencer
    wire [31:0] pass_left = desc[D_NTILES] - t_ps;
    always @(posedge clk) begin
        if (rst) begin
            st <= S_IDLE;
            pc <= 32'd0;
            done <= 1'b0;
            cycles <= 32'd0;
            layers <= 32'd0;
            dma_valid <= 1'b0;
            dma_write <= 1'b0;
            dma_addr <= 32'd0;
            dma_len <= 32'd0;
            if_wofs <= 32'd0;
            wb_ofs <= 32'd0;
        end else begin
            dma_valid <= 1'b0;
            if (st != S_IDLE) cycles <= cycles + 32'd1;
            case (st)
                S_IDLE: if (start) begin
                    pc <= prog_addr;
                    done <= 1'b0;
                    cycles <= 32'd0;
                    layers <= 32'd0;
                    st <= S_FETCH;
                end
                S_FETCH: begin
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= pc; dma_len <= DESC_WORDS * 4;
                    st <= S_FETCH_W;
                end
                S_FETCH_W: if (dma_done) st <= S_DECODE;
                S_DECODE: begin
                    if (op == 2'd0) begin
                        done <= 1'b1;
                        st <= S_IDLE;
                    end else begin
                        st <= S_IN;
                    end
                end
                S_IN: begin
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= desc[D_IN_ADDR]; dma_len <= desc[D_IN_LEN];
                    if_wofs <= 32'd0;
                    st <= S_IN_W;
                end
                S_IN_W: if (dma_done) begin
                    if (op == 2'd2 && vmode == 2'd2) begin
                        st <= S_IN2;
                    end else if (op == 2'd2) begin
                        st <= S_VRUN;
                    end else begin
                        st <= S_PASS;
                    end
                end
                S_IN2: begin
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= desc[D_IN2_ADDR]; dma_len <= desc[D_IN_LEN];
                    if_wofs <= desc[D_IN_LEN];
                    st <= S_IN2_W;
                end
                S_IN2_W: if (dma_done) st <= S_VRUN;
                S_PASS: begin
                    np <= (pass_left < desc[D_TPP]) ? pass_left : desc[D_TPP];
                    st <= S_LW;
                end
                S_LW: begin
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= desc[D_W_ADDR] + t_ps * desc[D_TILE_W];
                    dma_len <= np * desc[D_TILE_W];
                    st <= S_LW_W;
                end
                S_LW_W: if (dma_done) st <= S_LP;
                S_LP: begin
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= desc[D_P_ADDR] + t_ps * (C * PREC_BYTES);
                    dma_len <= np * (C * PREC_BYTES);
                    st <= S_LP_W;
                end
                S_LP_W: if (dma_done) st <= S_INIT;
                S_INIT: if (icnt == R - 1) st <= S_TILE;
                S_TILE: st <= S_STREAM;
                S_STREAM: if (j == desc[D_T] - 32'd1) st <= S_DRAIN;
                S_DRAIN: if (tile_done) st <= S_NEXT_TILE;
                S_NEXT_TILE: begin
                    if (tip + 32'd1 < np) begin
                        st <= S_STREAM;
                    end else if (pt + 32'd1 < desc[D_NPT]) begin
                        st <= S_ADV;
                    end else begin
                        st <= S_FLUSH;
                    end
                end
                S_ADV: st <= S_TILE;
                S_FLUSH: if (fl == FLUSH - 1) st <= S_WB;
                S_WB: begin
                    dma_valid <= 1'b1; dma_write <= 1'b1;
                    dma_addr <= desc[D_OUT_ADDR] + (wb_kg0 + wb_ktc + wb_lane) * desc[D_PQ];
                    dma_len <= desc[D_PQ];
                    wb_ofs <= (wb_tip * C + wb_lane) * desc[D_PQ];
                    st <= S_WB_W;
                end
                S_WB_W: if (dma_done) begin
                    if (wb_lane + 32'd1 < C && wb_lane + 32'd1 < wkleft) begin
                        st <= S_WB;
                    end else if (wb_tip + 32'd1 < np) begin
                        st <= S_WB;
                    end else if (t_ps + np < desc[D_NTILES]) begin
                        st <= S_PASS;
                    end else begin
                        st <= S_NEXT;
                    end
                end
                S_NEXT: begin
                    pc <= pc + DESC_WORDS * 4;
                    layers <= layers + 32'd1;
                    st <= S_FETCH;
                end
                S_VRUN: if (v_end) st <= S_FLUSH;
                S_VWB: begin
                    dma_valid <= 1'b1; dma_write <= 1'b1;
                    dma_addr <= desc[D_OUT_ADDR];
                    dma_len <= desc[D_C_PQ];
                    wb_ofs <= 32'd0;
                    st <= S_VWB_W;
                end
                S_VWB_W: if (dma_done) st <= S_NEXT;
                default: st <= S_IDLE;
            endcase
            // the vector op leaves FLUSH for its single write-back
            if (st == S_FLUSH && fl == FLUSH - 1 && op == 2'd2) st <= S_VWB;
        end
    end

    // counters of the compute loops
    always @(posedge clk) begin
        if (rst) begin
            t_ps <= 32'd0; icnt <= 32'd0; fl <= 32'd0;
        end else begin
            case (st)
                S_DECODE: begin
                    t_ps <= 32'd0;
                    g_ps <= 32'd0; ktc_ps <= 32'd0; kg0_ps <= 32'd0; cb_ps <= 32'd0;
                    vc <= 32'd0; vy <= 32'd0; vx <= 32'd0; vr <= 32'd0; vs <= 32'd0;
                    vcb <= 32'd0; vrow <= desc[D_BASE0]; vwoff <= 32'd0; vout <= 32'd0;
                    voy <= $signed(desc[D_OY0]); vox <= $signed(desc[D_OX0]);
                    fl <= 32'd0;
                end
                S_PASS: begin
                    icnt <= 32'd0;
                    pt <= 32'd0;
                    p0 <= 32'd0;
                end
                S_INIT: icnt <= icnt + 32'd1;
                S_TILE: begin
                    // first tile of the pass for this pixel tile
                    tip <= 32'd0;
                    g_g <= g_ps; g_ktc <= ktc_ps; g_kg0 <= kg0_ps; g_cb <= cb_ps;
                    wptr <= 32'd0; obase <= 32'd0;
                    j <= 32'd0; cl <= 32'd0; kr <= 32'd0; ks <= 32'd0; woff <= 32'd0;
                    cofs <= 32'd0;
                end
                S_STREAM: begin
                    j <= j + 32'd1;
                    if (ks == desc[D_KS] - 32'd1) begin
                        ks <= 32'd0;
                        if (kr == desc[D_KR] - 32'd1) begin
                            kr <= 32'd0;
                            woff <= 32'd0;
                            cl <= cl + 32'd1;
                            cofs <= cofs + desc[D_HW];
                        end else begin
                            kr <= kr + 32'd1;
                            woff <= woff + desc[D_W] - desc[D_KS] + 32'd1;
                        end
                    end else begin
                        ks <= ks + 32'd1;
                        woff <= woff + 32'd1;
                    end
                end
                S_NEXT_TILE: begin
                    tip <= tip + 32'd1;
                    wptr <= wptr + desc[D_T];
                    obase <= obase + desc[D_C_PQ];
                    j <= 32'd0; cl <= 32'd0; kr <= 32'd0; ks <= 32'd0; woff <= 32'd0;
                    cofs <= 32'd0;
                    if (last_kt) begin
                        g_g <= g_g + 32'd1; g_ktc <= 32'd0; g_kg0 <= g_kg0 + desc[D_KG];
                        g_cb <= g_cb + desc[D_CG_HW];
                    end else begin
                        g_ktc <= g_ktc + C;
                    end
                    if (!(tip + 32'd1 < np)) begin
                        // pass finished for this pixel tile: remember where the pass ends
                        wb_lane <= 32'd0; wb_tip <= 32'd0;
                        wb_g <= g_ps; wb_ktc <= ktc_ps; wb_kg0 <= kg0_ps;
                        fl <= 32'd0;
                    end
                end
                S_ADV: begin
                    pt <= pt + 32'd1;
                    p0 <= p0 + R;
                end
                S_FLUSH: fl <= fl + 32'd1;
                S_WB_W: if (dma_done) begin
                    if (wb_lane + 32'd1 < C && wb_lane + 32'd1 < wkleft) begin
                        wb_lane <= wb_lane + 32'd1;
                    end else if (wb_tip + 32'd1 < np) begin
                        wb_lane <= 32'd0;
                        wb_tip <= wb_tip + 32'd1;
                        if (wb_ktc + C >= desc[D_KG]) begin
                            wb_g <= wb_g + 32'd1; wb_ktc <= 32'd0; wb_kg0 <= wb_kg0 + desc[D_KG];
                        end else begin
                            wb_ktc <= wb_ktc + C;
                        end
                    end else begin
                        // next pass starts after the last tile of this one
                        t_ps <= t_ps + np;
                        g_ps <= g_g; ktc_ps <= g_ktc; kg0_ps <= g_kg0; cb_ps <= g_cb;
                    end
                end
                S_VRUN: begin
                    vout <= vout + 32'd1;
                    if (vs == desc[D_KS] - 32'd1) begin
                        vs <= 32'd0;
                        if (vr == desc[D_KR] - 32'd1) begin
                            vr <= 32'd0;
                            vwoff <= 32'd0;
                        end else begin
                            vr <= vr + 32'd1;
                            vwoff <= vwoff + desc[D_WSTEP] - desc[D_KS] + 32'd1;
                        end
                    end else begin
                        vs <= vs + 32'd1;
                        vwoff <= vwoff + 32'd1;
                    end
                    if (!v_lastw) vout <= vout;
                    if (v_lastw) begin
                        if (vx == desc[D_Q] - 32'd1) begin
                            vx <= 32'd0;
                            vox <= $signed(desc[D_OX0]);
                            if (vy == desc[D_P] - 32'd1) begin
                                vy <= 32'd0;
                                voy <= $signed(desc[D_OY0]);
                                vc <= vc + 32'd1;
                                vcb <= vcb + desc[D_HW];
                                vrow <= desc[D_BASE0];
                            end else begin
                                vy <= vy + 32'd1;
                                voy <= voy + $signed(desc[D_SH]);
                                vrow <= vrow + desc[D_WRAP_BASE];
                            end
                        end else begin
                            vx <= vx + 32'd1;
                            vox <= vox + $signed(desc[D_SW]);
                            vrow <= vrow + desc[D_SW];
                        end
                    end
                end
                default: begin end
            endcase
        end
    end
endmodule
/* verilator lint_on UNUSEDSIGNAL */
`default_nettype wire
