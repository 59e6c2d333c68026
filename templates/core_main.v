// autochip core: controller, buffers, im2col address generation and post-processing around an
// output-stationary array (module core_array, rendered from core_array.v.j2, core_pe inlined).
//
// The controller runs a program of layer descriptors (DESC_WORDS x 32-bit words, little endian)
// fetched from DRAM, one after the other, until a descriptor with op 0:
//   op 1 (compute): conv / linear as im2col GEMM. Rows of the array = R consecutive output
//        pixels, columns = C output channels of one group, reduction = Cg*KR*KS. The layer's
//        weight tiles are processed in passes that fit the weight, parameter and output
//        buffers; each pass sweeps all pixel tiles, post-processes every accumulator
//        (bias, requantisation or binary threshold) into the output buffer and writes it back.
//        With op bit 12 (weight prefetch) the weight and parameter buffers hold two slots and
//        the next pass's tiles load into the other slot while a pass computes.
//   op 2 (vector): max pooling, window sum + rescale (average pooling), or the two-input
//        rescale of a residual add: R lanes, lane i computes output element e + i, one
//        window element per lane per cycle, R outputs per ofmap write.
// Buffers (core_wram, filled / drained by the DMA one BUS-byte bus word per cycle, each DRAM
// byte at the same offset within a bus word as in DRAM): ifmap = R copies (each array row
// reads its own im2col byte every cycle), weight = rows of W_ROW bytes (one reduction step of
// C lanes), param = one word of P_TILE bytes per weight tile (its C 16-byte records), ofmap =
// bytes in DRAM order of the pass's output channels. All tensors in DRAM are int8 NCHW.
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
    parameter integer BUS       = 4,    // AXI data bus bytes
    parameter integer LB        = 2,    // log2(BUS)
    parameter integer IF_ADDR   = 10,   // ifmap byte address bits
    parameter integer IF_WORDS  = 256,  // ifmap copy: bus words
    parameter integer IF_WADDR  = 8,
    parameter integer W_ADDR    = 8,    // weight row index bits
    parameter integer W_ROW     = 8,    // bytes per weight row (C rounded up to 2^k)
    parameter integer W_ROW_LB  = 3,
    parameter integer W_WORD    = 8,    // bytes per weight RAM word
    parameter integer W_WORDS   = 256,
    parameter integer W_WADDR   = 8,
    parameter integer W_ROWS_LB = 0,    // log2(rows per weight word)
    parameter integer W_GRP_LB  = 1,    // log2(bus words per weight word)
    parameter integer O_ADDR    = 10,   // ofmap byte address bits
    parameter integer O_WB      = 8,    // bytes per ofmap word (>= BUS, >= R)
    parameter integer O_WBL     = 3,    // log2(O_WB)
    parameter integer O_BWORDS  = 64,   // words per ofmap bank (two banks)
    parameter integer O_BADDR   = 6,
    parameter integer P_TILE    = 128,  // bytes of one tile's parameter records
    parameter integer P_GRP_LB  = 5,    // log2(bus words per P_TILE)
    parameter integer P_TADDR   = 4     // parameter tile index bits
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
    output reg         dma_post,   // the write-back is posted: the write engine runs on
    output wire        dma_hold,   // the DMA accepts no read beat (a forwarded ifmap write next)
    input  wire        dma_wbusy,  // a write is in flight
    input  wire        dma_done,
    input  wire        rd_valid,
    input  wire [8*BUS-1:0] rd_data,
    input  wire [BUS-1:0]   rd_strb,
    input  wire [31:0] rd_word,
    input  wire        src_re,
    input  wire [31:0] src_word,
    output wire [8*BUS-1:0] src_data,
    // array (core_array: tiles back to back, results read column by column)
    output wire                    arr_valid,
    output wire                    arr_last,
    output wire [R*A_BITS-1:0]     arr_a,
    output wire [C*(W_BITS+1)-1:0] arr_b,
    output wire [(C>1?$clog2(C):1)-1:0] arr_col_sel,
    input  wire [R*ACC_BITS-1:0]   arr_col_data
);
    localparam integer DESC_WORDS = 64;
    localparam integer PREC_BYTES = 16;   // bytes of one per-channel parameter record
    localparam integer FLUSH      = 10;   // cycles to drain the vector engine's pipeline
    // beat_last to the array's results, beyond the skew: the buffers' read-word registers,
    // core_array's input register, core_pe's term register (Fmax)
    localparam integer A_LAT      = 3;
    localparam integer FLUSH_C    = R + C + 8 + A_LAT;  // last beat's skew, column walk, pipelines
    localparam integer MIN_P      = (R > C) ? R : C;  // shortest tile period of the read-out
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
        D_TILE_W = 44, D_NPT = 45, D_CG = 46, D_C_PQ = 47, D_LAST_PQ = 48, D_IN2_OFS = 49,
        D_V_OYW = 50, D_V_CWRAP = 51, D_V_LAST = 52, D_IN_RUNS = 53, D_IN_STRIDE = 54,
        D_IN_BSTRIDE = 55, D_OUT_RUN = 56, D_OUT_STRIDE = 57, D_O_PITCH = 58, D_FWD_OFS = 59,
        D_IN_IFOFS = 60, D_O_BASE = 61, D_W_SLOT = 62, D_P_SLOT = 63;
    // a compute descriptor's cross-layer prefetch (op bit 13; program.X_FIELDS) in words only
    // vector descriptors read: the next compute layer's first pass, weight and parameter
    // bytes and DRAM addresses, and the weight row / parameter word it goes to
    localparam integer X_W_ADDR = D_MULT0, X_P_ADDR = D_MULT1, X_W_LEN = D_V_OYW,
        X_P_LEN = D_V_CWRAP, X_W_ROW = D_V_LAST, X_P_WORD = D_IN2_OFS;
    // a compute descriptor's load watermark (op bit 16): bytes per channel of a row group,
    // and KR W (a window's rows), in the words of the second input's address and of the
    // vector lanes' row step (program.X_FIELDS in_grp, in_need)
    localparam integer X_IN_GRP = D_IN2_ADDR, X_IN_NEED = D_WSTEP;
    /* verilator lint_on UNUSEDPARAM */

    localparam [4:0] S_IDLE = 5'd0, S_FETCH = 5'd1, S_FETCH_W = 5'd2, S_DECODE = 5'd3,
        S_IN = 5'd4, S_IN_W = 5'd5, S_IN2 = 5'd6, S_IN2_W = 5'd7, S_PASS = 5'd8,
        S_LW = 5'd9, S_LW_W = 5'd10, S_LP = 5'd11, S_LP_W = 5'd12, S_INIT = 5'd13,
        S_TILE = 5'd14, S_STREAM = 5'd15, S_PF = 5'd16, S_FLUSH = 5'd19, S_WB = 5'd20, S_WB_W = 5'd21,
        S_NEXT = 5'd22, S_VRUN = 5'd23, S_VWB = 5'd24, S_VWB_W = 5'd25, S_VINIT = 5'd26;

    reg [4:0]  st;
    reg [31:0] desc [0:DESC_WORDS-1];
    reg [31:0] pc;

    wire [1:0]  op        = desc[D_OP][1:0];
    wire        m_adder   = desc[D_OP][2];
    wire        m_thresh  = desc[D_OP][3];
    wire [1:0]  vmode     = desc[D_OP][5:4];
    wire        nobounds  = desc[D_OP][6];
    wire        w_keep    = desc[D_OP][7];  // weights and parameters of the previous descriptor
    // feature-map residency: forward every ofmap write into the ifmap copies as well (at
    // ifmap byte D_FWD_OFS + the output's byte offset from out_addr's bus word); the first /
    // second input is already in the ifmap (no load); owait: a resident input still waits for
    // the posted write-back (the layer writes the ofmap half it drains)
    wire        fwd       = desc[D_OP][8];
    wire        res_a     = desc[D_OP][9];
    wire        res_b     = desc[D_OP][10];
    wire        owait     = desc[D_OP][11];
    // weight prefetch: two slots in the weight and parameter buffers (slot 1 at weight row
    // D_W_SLOT, parameter tile D_P_SLOT); while a pass computes on one slot, the next pass's
    // weight tiles and parameter records are loaded into the other one
    wire        pf        = desc[D_OP][12];
    // cross-layer prefetch: during the last pass, load the next compute layer's first pass
    // (xpf); this layer's first pass was loaded so by the layer before (xin) into slot s0
    wire        xpf       = desc[D_OP][13];
    wire        xin       = desc[D_OP][14];
    wire        s0        = desc[D_OP][15];
    // load watermark: the input load runs in row groups (every channel's next in_grp bytes,
    // channel by channel) beside the compute, which starts once the first pixel tile's rows
    // are in; a pixel tile whose rows are not all loaded yet waits (see the load engine)
    wire        wm        = desc[D_OP][16];
    wire signed [31:0] d_h  = desc[D_H];
    wire signed [31:0] d_w  = desc[D_W];
    wire signed [31:0] d_lo = desc[D_LO];
    wire signed [31:0] d_hi = desc[D_HI];

    assign busy = (st != S_IDLE);


    // ---------------------------------------------------------------- descriptor loading
    // word di arrives in bus word di*4/BUS (descriptors are bus-aligned)
    integer di;
    always @(posedge clk) begin
        for (di = 0; di < DESC_WORDS; di = di + 1) begin
            if (rst) begin
                desc[di] <= 32'd0;
            end else if (rd_valid && (st == S_FETCH_W) && rd_word == (di * 4) / BUS) begin
                desc[di] <= rd_data[((di * 4) % BUS) * 8 +: 32];
            end
        end
    end

    // ---------------------------------------------------------------- buffers
    reg  [31:0] tip;           // tile in pass
    reg  [31:0] sc;            // post-processing column (lane) of the walk
    reg  [P_TADDR-1:0] col_tip;  // tile in pass of the walk
    localparam integer W_GRP = 1 << W_GRP_LB;   // bus words per weight word
    localparam integer P_GRP = 1 << P_GRP_LB;   // bus words per parameter tile
    localparam integer W_RPW = 1 << W_ROWS_LB;  // weight rows per weight word
    // ifmap: R copies, written together by the DMA, read per array row (one byte each)
    reg  [31:0]          if_wofs;   // ifmap word offset of the load in flight
    // strided input load: run irun of in_runs at DRAM in_a, ifmap byte in_b (in_b mod BUS =
    // in_a mod BUS: the compiler's in_bstride = in_stride mod BUS)
    reg  [31:0]          in_a, in_b, irun;
    // the input load engine (load watermark, op bit 16): it runs the row groups' runs while
    // the controller computes; wm_lim: the ifmap byte (of channel 0) up to which every
    // channel's rows are loaded (all ones: the whole input, or no watermark)
    localparam [1:0] LS_IDLE = 2'd0, LS_CMD = 2'd1, LS_WAIT = 2'd2;
    reg  [1:0]           ld_st;
    wire                 ld_busy = (ld_st != LS_IDLE);
    reg  [31:0]          ld_back;   // from a group's last channel to the next group's first
    // ifmap byte positions (channel 0's bytes, a window's rows past it: < 4 * ifmap bytes)
    localparam integer   WMW = IF_ADDR + 3;
    localparam [WMW-1:0] WM_ALL = {1'b0, {(WMW-1){1'b1}}};
    reg  [WMW-1:0]       gleft;     // bytes per channel from this group's first on
    reg  signed [WMW-1:0] wm_lim;
    wire                 ld_more = (gleft > desc[X_IN_GRP][WMW-1:0]);  // a group after this
    // the strided runs' address steps (S_IN_W: the band's strides; the load engine: the next
    // channel, or back to channel 0 of the next group), one pair of adders for both
    wire                 ld_chan = (irun < desc[D_CG]);
    wire [31:0]          in_a_nx = in_a + (ld_busy ? (ld_chan ? desc[D_HW] : ld_back)
                                                   : desc[D_IN_STRIDE]);
    wire [31:0]          in_b_nx = in_b + (ld_busy ? (ld_chan ? desc[D_HW] : ld_back)
                                                   : desc[D_IN_BSTRIDE]);
    always @(posedge clk) ld_back <= desc[X_IN_GRP] + desc[D_HW] - desc[D_CG_HW];
    wire                 if_load = rd_valid & ((st == S_IN_W) | (st == S_IN2_W)
                                               | (ld_st == LS_WAIT));
    // forwarded ofmap writes (registered; during a load only the watermarked one's, and the
    // DMA then holds its read beat back: dma_hold): R bytes at an R-aligned ifmap byte,
    // inside one bus word (R divides BUS)
    wire [BUS-1:0]       fw_we;
    wire [IF_WADDR-1:0]  fw_wa;
    wire [8*BUS-1:0]     fw_wd;
    wire [BUS-1:0]       if_we = if_load ? rd_strb : fw_we;
    wire [IF_WADDR-1:0]  if_wa = if_load ? if_wofs[IF_WADDR-1:0] + rd_word[IF_WADDR-1:0]
                                         : fw_wa;
    wire [8*BUS-1:0]     if_wd = if_load ? rd_data : fw_wd;
    wire [R*IF_ADDR-1:0] if_ra;     // byte addresses
    wire [R-1:0]         if_re;
    wire [R*8-1:0]       if_rd;     // bytes read
    // weight: rows of W_ROW bytes, W_RPW rows per word of W_GRP bus words
    // prefetch engine (weight prefetch, op bit 12): it loads the next pass's tiles into the
    // other slot while the controller computes (S_INIT .. S_FLUSH: the controller issues no
    // DMA command then); the pass's write-back (S_WB) waits until it is idle
    localparam [2:0] PF_IDLE = 3'd0, PF_W = 3'd1, PF_W_W = 3'd2, PF_P = 3'd3, PF_P_W = 3'd4;
    reg  [2:0]           pf_st;
    wire                 pf_busy = (pf_st != PF_IDLE);
    reg                  slot;      // the slot of the pass being computed
    reg                  wr_slot;   // the slot being loaded (registered: stable while it loads)
    reg                  pf_x;      // the prefetch engine loads the next layer's first pass
    reg                  wr_x;      // ... registered with wr_slot
    reg  [W_WADDR-1:0]   w_wofs;    // weight word of the loaded slot's first row
    reg  [P_TADDR-1:0]   p_wofs;    // parameter word of the loaded slot's first tile
    reg  [31:0]          w_rbase;   // weight row of the computed slot's first row
    reg  [P_TADDR-1:0]   p_rbase;   // parameter word of the computed slot's first tile
    always @(posedge clk) begin
        wr_slot <= pf_busy ? ~slot : slot;
        wr_x    <= pf_busy & pf_x;
        w_wofs  <= wr_x ? desc[X_W_ROW][W_ROWS_LB +: W_WADDR]
                 : wr_slot ? desc[D_W_SLOT][W_ROWS_LB +: W_WADDR] : {W_WADDR{1'b0}};
        p_wofs  <= wr_x ? desc[X_P_WORD][P_TADDR-1:0]
                 : wr_slot ? desc[D_P_SLOT][P_TADDR-1:0] : {P_TADDR{1'b0}};
        w_rbase <= slot ? desc[D_W_SLOT] : 32'd0;
        p_rbase <= slot ? desc[D_P_SLOT][P_TADDR-1:0] : {P_TADDR{1'b0}};
    end
    wire                 w_load = rd_valid & ((st == S_LW_W) | (pf_st == PF_W_W));
    wire [8*W_WORD-1:0]  w_rw;
    wire [W_WORD-1:0]    w_we;
    reg  [W_ADDR-1:0]    w_ra;      // row index
    reg  [31:0]          w_slice;   // row within the word read
    reg  [8*W_WORD-1:0]  w_rw_q;    // the word read and its row, registered (Fmax)
    reg  [31:0]          w_slice_q;
    wire                 w_re;
    wire [C*8-1:0]       w_rd;
    // parameters: one word of P_TILE bytes per weight tile, record k at byte 16 k
    wire                 p_load = rd_valid & ((st == S_LP_W) | (pf_st == PF_P_W));
    wire [P_TILE-1:0]    p_we;
    wire [8*P_TILE-1:0]  p_rw;
    wire [31:0]          p_sel;     // record of the word read
    wire [10*8-1:0]      p_rd;
    // ofmap: bytes of the pass's output channels, at their DRAM offset within a bus word
    reg  [31:0]          pass_oaddr;  // DRAM address of the pass's (vector op's) first output
    // strided write-back: one run of out_run bytes per output channel, run at DRAM wb_a from
    // ofmap byte o_off + wb_o (o_pitch = out_stride mod BUS); o_wofs: ofmap bus word of the
    // run's first byte, added to the DMA's word index
    reg  [31:0]          wb_a, wb_o, o_wofs;
    reg  [31:0]          o_base;      // the layer's ofmap half (D_O_BASE, whole bus words)
    wire [LB-1:0]        o_off = pass_oaddr[LB-1:0];

    genvar gi;
    generate
        for (gi = 0; gi < R; gi = gi + 1) begin : g_if
            // the word read and its byte lane, per copy (Verilator: not gathered into an R-word
            // bus and an array every cycle)
            wire [8*BUS-1:0] rw;
            reg  [LB-1:0]    lane;
            core_wram #(.BYTES(BUS), .DEPTH(IF_WORDS), .ADDR(IF_WADDR)) u_ram (
                .clk(clk), .we(if_we), .wa(if_wa), .wd(if_wd),
                .re(if_re[gi]), .ra(if_ra[gi*IF_ADDR+LB +: IF_WADDR]), .rd(rw));
            always @(posedge clk) begin
                if (if_re[gi]) lane <= if_ra[gi*IF_ADDR +: LB];
            end
            // Fmax: the word read is registered before its byte is selected (no logic after
            // the block RAM's slow clock-to-output); the byte is there two cycles after the read
            reg [8*BUS-1:0] rw_q;
            reg [LB-1:0]    lane_q;
            always @(posedge clk) begin
                rw_q   <= rw;
                lane_q <= lane;
            end
            assign if_rd[gi*8 +: 8] = rw_q[lane_q*8 +: 8];
        end
        for (gi = 0; gi < W_GRP; gi = gi + 1) begin : g_wwe
            assign w_we[gi*BUS +: BUS] = (w_load && (rd_word % W_GRP) == gi) ? rd_strb
                                                                          : {BUS{1'b0}};
        end
        for (gi = 0; gi < C; gi = gi + 1) begin : g_wrd
            assign w_rd[gi*8 +: 8] = w_rw_q[(w_slice_q * W_ROW + gi) * 8 +: 8];
        end
        for (gi = 0; gi < P_GRP; gi = gi + 1) begin : g_pwe
            assign p_we[gi*BUS +: BUS] = (p_load && (rd_word % P_GRP) == gi) ? rd_strb
                                                                          : {BUS{1'b0}};
        end
    endgenerate

    core_wram #(.BYTES(W_WORD), .DEPTH(W_WORDS), .ADDR(W_WADDR)) u_weight (
        .clk(clk), .we(w_we), .wa(rd_word[W_GRP_LB +: W_WADDR] + w_wofs),
        .wd({W_GRP{rd_data}}),
        .re(w_re), .ra(w_ra[W_ROWS_LB +: W_WADDR]), .rd(w_rw));
    always @(posedge clk) begin
        if (w_re) w_slice <= {{(32-W_ADDR){1'b0}}, w_ra} % W_RPW;
        w_rw_q <= w_rw;
        w_slice_q <= w_slice;
    end

    // read in the cycle before the post-processing takes the column's record (p_re, the
    // column walk's stage 0: p_rw is read only then; Verilator: not the whole word every cycle)
    wire                 p_re;
    core_wram #(.BYTES(P_TILE), .DEPTH(1 << P_TADDR), .ADDR(P_TADDR)) u_param (
        .clk(clk), .we(p_we), .wa(rd_word[P_GRP_LB +: P_TADDR] + p_wofs),
        .wd({P_GRP{rd_data}}),
        .re(p_re), .ra(col_tip), .rd(p_rw));
    assign p_rd = p_rw[p_sel * (PREC_BYTES * 8) +: 80];

    // ofmap: two banks of O_WB-byte words (even and odd words), so that a write of R <= O_WB
    // bytes at any byte address touches one word of each; the DMA reads bus words
    reg  [16*O_WB-1:0]   o_win_d;   // write window: word o_word, then word o_word + 1
    reg  [2*O_WB-1:0]    o_win_m;
    reg  [O_ADDR-O_WBL-1:0] o_word;
    wire [O_ADDR-O_WBL-1:0] o_word1 = o_word + 1'b1;
    wire [31:0]          o_sword = src_word + o_wofs;          // ofmap bus word
    wire [31:0]          o_rword = o_sword >> (O_WBL - LB);    // ofmap word of bus word src_word
    reg                  o_rbank;
    reg  [31:0]          o_rslice;
    wire [16*O_WB-1:0]   o_rd;
    generate
        for (gi = 0; gi < 2; gi = gi + 1) begin : g_ofmap
            // the window's first word is in bank o_word[0], its second in the other one
            wire first = (o_word[0] == gi);
            core_wram #(.BYTES(O_WB), .DEPTH(O_BWORDS), .ADDR(O_BADDR)) u_ram (
                .clk(clk),
                .we(first ? o_win_m[O_WB-1:0] : o_win_m[2*O_WB-1:O_WB]),
                .wa(first ? o_word[O_BADDR:1] : o_word1[O_BADDR:1]),
                .wd(first ? o_win_d[8*O_WB-1:0] : o_win_d[16*O_WB-1:8*O_WB]),
                .re(src_re), .ra(o_rword[O_BADDR:1]), .rd(o_rd[gi*8*O_WB +: 8*O_WB]));
        end
    endgenerate
    always @(posedge clk) begin
        if (src_re) begin
            o_rbank <= o_rword[0];
            o_rslice <= o_sword % (O_WB / BUS);
        end
    end
    assign src_data = o_rd[o_rbank * (8*O_WB) + o_rslice * (8*BUS) +: 8*BUS];

    // ---------------------------------------------------------------- compute-op state
    reg  [31:0] t_ps;          // first weight tile of the pass
    reg  [31:0] np;            // tiles in this pass
    reg  [31:0] g_ps, ktc_ps, kg0_ps, cb_ps;   // pass start: group, kt*C, g*KG, g*CG_HW

    reg  [31:0] g_ktc, g_kg0, g_cb, g_g;       // current tile: kt*C, g*KG, input channel base
    reg  [31:0] p0;            // first pixel of the pixel tile
    reg  [31:0] pt;            // pixel tile index
    reg  [31:0] icnt;          // lane init counter
    reg  [31:0] j, cl, kr, ks, woff, cofs;     // beat counters
    reg  [31:0] wptr;          // tip * T
    reg  [31:0] obase;         // tip * C * PQ
    reg  [31:0] fl;            // flush counter
    wire [31:0] kleft   = desc[D_KG] - g_ktc;
    wire        last_kt = (g_ktc + C >= desc[D_KG]);

    // lanes: output pixel coordinates of array row i
    reg signed [31:0] lx [0:R-1];
    reg signed [31:0] lox [0:R-1];
    reg signed [31:0] loy [0:R-1];
    reg signed [31:0] lb [0:R-1];

    // vector engine: its lanes' ifmap byte addresses (the read ports are shared)
    wire [R*IF_ADDR-1:0] v_ra;

    // beat issue (cycle 0), the buffers' words (cycle 1), registered: the beat's data (cycle 2)
    // a tile is issued in tper >= T cycles, its beats in the first T (tper - T idle cycles keep
    // short tiles MIN_P apart for the read-out); tile_end is its last cycle
    wire [31:0] tper     = (desc[D_T] > MIN_P) ? desc[D_T] : MIN_P;
    // a pixel tile starts (j = 0) once the load engine has loaded the rows it reads: need_q is
    // the ifmap byte past the last one its last lane's window reads in channel 0
    reg  signed [WMW-1:0] need_q;
    wire       wm_stall  = (j == 32'd0) & (need_q > wm_lim);
    wire       issue     = (st == S_STREAM) & (j < desc[D_T]) & ~wm_stall;
    // the loop bounds, registered (Fmax: equality tests of registers; desc is stable while a
    // layer runs, np while its pass streams; tip < np and pt < NPT while streaming)
    reg  [31:0] k_t1, k_tper1, k_np1, k_npt1, k_wgap;
    reg  [WMW-1:0] k_need;
    always @(posedge clk) begin
        k_need <= desc[X_IN_NEED][WMW-1:0];
        k_t1 <= desc[D_T] - 32'd1;
        k_tper1 <= tper - 32'd1;
        k_np1 <= np - 32'd1;
        k_npt1 <= desc[D_NPT] - 32'd1;
        k_wgap <= desc[D_W] - desc[D_KS] + 32'd1;
    end
    wire       beat_last = issue & (j == k_t1);
    wire       tile_end  = (st == S_STREAM) & (j == k_tper1) & ~wm_stall;
    wire       more_tip  = (tip != k_np1);
    wire       last_pt   = (pt == k_npt1);
    wire       lane_adv  = tile_end & ~more_tip & ~last_pt;
    reg        iss_d, last_d, iss_q, last_q;
    reg  [R-1:0] lv_d, lv_q;
    reg  [7:0] pad_d;
    // the lanes' step constants, registered from the descriptor (Fmax: the step is a
    // carry-select of two sums, the wrap a compare of the old x, all side by side): index 0
    // the step by one pixel (S_INIT), 1 by R pixels; kl_w*: the step when x wraps, which it
    // does when x >= kl_q
    reg  signed [31:0] kl_q [0:1];
    reg  signed [31:0] kl_wx [0:1];
    reg  signed [31:0] kl_wox [0:1];
    reg  signed [31:0] kl_woy [0:1];
    reg  signed [31:0] kl_wb [0:1];
    // st == S_INIT one cycle late (Fmax: a register drives the lanes' step muxes): exact for
    // the steps, which start in S_INIT's second cycle (lane 1) and in S_STREAM (after S_TILE)
    reg                lane_by1;
    always @(posedge clk) begin
        lane_by1  <= (st == S_INIT);
        kl_q[0]   <= $signed(desc[D_Q]) - $signed(desc[D_A1_X]);
        kl_q[1]   <= $signed(desc[D_Q]) - $signed(desc[D_AR_X]);
        kl_wx[0]  <= $signed(desc[D_A1_X]) - $signed(desc[D_Q]);
        kl_wx[1]  <= $signed(desc[D_AR_X]) - $signed(desc[D_Q]);
        kl_wox[0] <= $signed(desc[D_A1_OX]) - $signed(desc[D_WRAP_OX]);
        kl_wox[1] <= $signed(desc[D_AR_OX]) - $signed(desc[D_WRAP_OX]);
        kl_woy[0] <= $signed(desc[D_A1_OY]) + $signed(desc[D_SH]);
        kl_woy[1] <= $signed(desc[D_AR_OY]) + $signed(desc[D_SH]);
        kl_wb[0]  <= $signed(desc[D_A1_BASE]) + $signed(desc[D_WRAP_BASE]);
        kl_wb[1]  <= $signed(desc[D_AR_BASE]) + $signed(desc[D_WRAP_BASE]);
    end

    generate
        for (gi = 0; gi < R; gi = gi + 1) begin : g_lane
            wire signed [31:0] iy = loy[gi] + $signed(kr);
            wire signed [31:0] ix = lox[gi] + $signed(ks);
            wire inb = (iy >= 0) & (iy < d_h) & (ix >= 0) & (ix < d_w);
            wire [31:0] ad = g_cb + cofs + lb[gi] + woff;  // byte address
            assign if_ra[gi*IF_ADDR +: IF_ADDR] = (st == S_VRUN) ? v_ra[gi*IF_ADDR +: IF_ADDR]
                                                                : ad[IF_ADDR-1:0];
            assign if_re[gi] = (issue & inb) | (st == S_VRUN);
            assign arr_a[gi*A_BITS +: A_BITS] = lv_q[gi] ? if_rd[gi*8 +: A_BITS]
                                                         : pad_d[A_BITS-1:0];
            // step this lane: by one pixel (init from lane gi-1) or by R pixels (tile advance).
            // The step's sums are blocking temporaries of the block, computed only in a cycle
            // that uses them, and each register has one non-blocking write (Verilator: as
            // continuous assignments every lane's step ran every cycle; each write of an array
            // element costs a flag and a value cleared and tested every cycle); lane R-1's step
            // also gives need_q.
            reg                by1, wrap;
            reg signed [31:0]  sx, sox, soy, sb, nx, nox, noy, nb, nd_b, nd_x;
            wire               l_go = (st == S_INIT && icnt == gi) || lane_adv;
            /* verilator lint_off BLKSEQ */
            always @(posedge clk) begin
                if (l_go || (gi == R - 1 && st == S_TILE)) begin
                    by1 = lane_by1;
                    sx  = (gi == 0 || !by1) ? lx[gi]  : lx[gi-1];
                    sox = (gi == 0 || !by1) ? lox[gi] : lox[gi-1];
                    soy = (gi == 0 || !by1) ? loy[gi] : loy[gi-1];
                    sb  = (gi == 0 || !by1) ? lb[gi]  : lb[gi-1];
                    wrap = (sx >= (by1 ? kl_q[0] : kl_q[1]));
                    nx  = wrap ? sx + (by1 ? kl_wx[0] : kl_wx[1])
                               : sx + $signed(by1 ? desc[D_A1_X] : desc[D_AR_X]);
                    nox = wrap ? sox + (by1 ? kl_wox[0] : kl_wox[1])
                               : sox + $signed(by1 ? desc[D_A1_OX] : desc[D_AR_OX]);
                    noy = wrap ? soy + (by1 ? kl_woy[0] : kl_woy[1])
                               : soy + $signed(by1 ? desc[D_A1_OY] : desc[D_AR_OY]);
                    nb  = wrap ? sb + (by1 ? kl_wb[0] : kl_wb[1])
                               : sb + $signed(by1 ? desc[D_A1_BASE] : desc[D_AR_BASE]);
                    // need_q = the window's first row's first byte (base - x, x the lane's
                    // first column) + KR W: the rows the window reads, whole (the load
                    // engine's groups are whole rows); the first pixel tile's in S_TILE, the
                    // next one's when the lanes step to it
                    if (gi == R - 1 && (st == S_TILE || lane_adv)) begin
                        nd_b = (st == S_TILE) ? lb[gi] : nb;
                        nd_x = (st == S_TILE) ? lox[gi] : nox;
                        need_q <= nd_b[WMW-1:0] - nd_x[WMW-1:0] + $signed(k_need);
                    end
                    if (gi == 0 && st == S_INIT) begin  // lane 0's first pixel
                        nx  = 32'sd0;
                        nox = $signed(desc[D_OX0]);
                        noy = $signed(desc[D_OY0]);
                        nb  = $signed(desc[D_BASE0]);
                    end
                    if (l_go) begin
                        lx[gi]  <= nx;
                        lox[gi] <= nox;
                        loy[gi] <= noy;
                        lb[gi]  <= nb;
                    end
                end
            end
            /* verilator lint_on BLKSEQ */
            always @(posedge clk) begin
                if (rst) begin
                    lv_d[gi] <= 1'b0;
                    lv_q[gi] <= 1'b0;
                end else begin
                    lv_d[gi] <= issue & inb;
                    lv_q[gi] <= lv_d[gi];
                end
            end
        end
        for (gi = 0; gi < C; gi = gi + 1) begin : g_col
            assign arr_b[gi*(W_BITS+1) +: W_BITS+1] = {m_adder, w_rd[gi*8 +: W_BITS]};
        end
    endgenerate

    assign w_re = issue;
    always @(*) begin
        w_ra = wptr[W_ADDR-1:0] + j[W_ADDR-1:0];  // weight row
    end

    always @(posedge clk) begin
        if (rst) begin
            iss_d <= 1'b0;
            last_d <= 1'b0;
            iss_q <= 1'b0;
            last_q <= 1'b0;
            pad_d <= 8'd0;
        end else begin
            iss_d <= issue;
            last_d <= beat_last;
            iss_q <= iss_d;
            last_q <= last_d;
            pad_d <= desc[D_PAD][7:0];
        end
    end
    assign arr_valid = iss_q;
    assign arr_last  = last_q;

    // ---------------------------------------------------------------- array read-out
    // A tile's results stay in the PEs' result registers until the next tile's last beat. R +
    // A_LAT cycles after the last beat left the controller (beat_last), the column walk starts: for
    // cc = 0 .. C-1, the R results of column cc (output channel cc, pixels p0 .. p0+R-1,
    // consecutive bytes of NCHW) are read through the array's column select into R
    // post-processing pipelines at once and reach the ofmap as one write of R bytes. Column cc
    // is read when row R-1 has finished it and before row 0 starts the next tile's result (the
    // tile period tper >= R), and a walk ends before the next one starts (tper >= C). The tile's
    // output address, lanes and parameter word wait in col_* / pend_* meanwhile.
    reg               col_run;
    reg  [31:0]       col_addr;    // ofmap byte of (channel cc, pixel p0)
    reg  [31:0]       col_kleft;   // valid lanes of the tile
    reg  [31:0]       col_npix;    // valid pixels from p0 on
    reg  [31:0]       pend_addr, pend_kleft, pend_npix;
    reg  [P_TADDR-1:0] pend_tip;
    wire              walk_go;     // beat_last, R + A_LAT cycles later
    autochip_delay #(.WIDTH(1), .DEPTH(R + A_LAT)) u_walk_go (
        .clk(clk), .rst(rst), .en(1'b1), .d(beat_last), .q(walk_go));
    // the tile's walk parameters follow beat_last A_LAT cycles behind (the next tile's may be
    // as close as max(R, C) cycles: pend_* is written A_LAT cycles late, read R cycles later)
    wire              pend_go;
    wire [31:0]       pend_addr_d, pend_kleft_d, pend_npix_d;
    wire [P_TADDR-1:0] pend_tip_d;
    autochip_delay #(.WIDTH(97 + P_TADDR), .DEPTH(A_LAT)) u_pend (
        .clk(clk), .rst(rst), .en(1'b1),
        .d({beat_last, {{(32-LB){1'b0}}, o_off} + o_base + obase + p0, kleft, desc[D_PQ] - p0,
            tip[P_TADDR-1:0] + p_rbase}),
        .q({pend_go, pend_addr_d, pend_kleft_d, pend_npix_d, pend_tip_d}));
    assign arr_col_sel = sc[(C>1?$clog2(C):1)-1:0];

    always @(posedge clk) begin
        if (rst) begin
            col_run <= 1'b0;
            sc <= 32'd0;
            col_addr <= 32'd0;
            col_kleft <= 32'd0;
            col_npix <= 32'd0;
            col_tip <= {P_TADDR{1'b0}};
        end else begin
            if (pend_go) begin
                pend_addr <= pend_addr_d;
                pend_kleft <= pend_kleft_d;
                pend_npix <= pend_npix_d;
                pend_tip <= pend_tip_d;
            end
            if (col_run) begin
                sc <= sc + 32'd1;
                col_addr <= col_addr + desc[D_O_PITCH];
                if (sc == C - 1) col_run <= 1'b0;
            end
            if (walk_go) begin
                col_run <= 1'b1;
                sc <= 32'd0;
                col_addr <= pend_addr;
                col_kleft <= pend_kleft;
                col_npix <= pend_npix;
                col_tip <= pend_tip;
            end
        end
    end

    // post-processing, R lanes: 1 column select, 2 + bias, 3 partial products (16 x 16 bits:
    // one DSP multiplier each, Fmax) / threshold compare, 4 product, 5 + rounding, 6 arithmetic
    // shift by the shift's multiple of 8 (and whether the result leaves 9 bits), 7 the rest
    // of the shift (the low 9 bits kept), 8 clamp (or +-1) to a byte (the shift in two stages:
    // Fmax; lo, hi fit a byte: the compiler checks)
    reg               s1_v, s2_v, s3_v, s4_v, s5_v, s6_v, s7_v, s8_v;
    reg  [31:0]       s1_a, s2_a, s3_a, s4_a, s5_a, s6_a, s7_a, s8_a;
    reg  [R-1:0]      s1_m, s2_m, s3_m, s4_m, s5_m, s6_m, s7_m, s8_m;
    reg  [31:0]       s1_cc;
    reg  signed [31:0] s2_mult;
    reg  [7:0]        s2_shift, s3_shift, s4_shift, s5_shift, s6_shift;
    reg               s2_flip;
    reg  signed [63:0] s4_rnd;
    reg  [63:0]       s4_mhi, s5_mhi;  // bits of a rounded sum above a 9-bit result
    reg  [8*R-1:0]    s8_d;
    reg  signed [31:0] s1_acc [0:R-1];
    reg  signed [31:0] s2_sum [0:R-1];
    // sum = sh 2^16 + sl, mult = mh 2^16 + ml (sh, mh signed; sl, ml unsigned)
    reg  signed [31:0] s3_hh [0:R-1];   // sh * mh
    reg  signed [32:0] s3_hl [0:R-1];   // sh * ml
    reg  signed [32:0] s3_lh [0:R-1];   // sl * mh
    reg  [31:0]        s3_ll [0:R-1];   // sl * ml
    reg  [R-1:0]      s3_bit, s4_bit, s5_bit, s6_bit, s7_bit;
    reg  signed [63:0] s4_prod [0:R-1];
    reg  signed [63:0] s5_sum [0:R-1];
    reg  signed [63:0] s6_c [0:R-1];     // shifted by the multiple of 8
    reg  [R-1:0]      s6_big, s6_neg, s7_big, s7_neg;  // the result is outside 9 bits / < 0
    reg  signed [8:0] s7_q [0:R-1];      // the result's low 9 bits
    assign p_sel = s1_cc;
    wire signed [31:0] p_bias = p_rd[31:0];
    wire signed [31:0] p_mult = p_rd[63:32];
    wire signed [8:0] p_lo = d_lo[8:0];
    wire signed [8:0] p_hi = d_hi[8:0];

    // Each lane's datapath registers load only when the stage before holds a valid column
    // (the s*_v chain): a stage's words are read only while it is valid, the ofmap write is
    // masked otherwise, so their values are those of ungated registers whenever they are read
    // (Verilator: the idle pipeline's lanes, most cycles of a layer, are skipped). The delay
    // lines (address, mask, shift, threshold bit) stay ungated: Yosys maps them to SRL16E,
    // which a different enable per stage would prevent.
    wire              s0_v = col_run & (sc < col_kleft);
    assign p_re = s0_v;
    always @(posedge clk) begin
        if (rst) begin
            s1_v <= 1'b0; s2_v <= 1'b0; s3_v <= 1'b0; s4_v <= 1'b0; s5_v <= 1'b0;
            s6_v <= 1'b0; s7_v <= 1'b0; s8_v <= 1'b0;
        end else begin
            s1_v <= s0_v;
            s2_v <= s1_v; s3_v <= s2_v; s4_v <= s3_v; s5_v <= s4_v; s6_v <= s5_v;
            s7_v <= s6_v; s8_v <= s7_v;
        end
        s1_a <= col_addr; s2_a <= s1_a; s3_a <= s2_a; s4_a <= s3_a; s5_a <= s4_a;
        s6_a <= s5_a; s7_a <= s6_a; s8_a <= s7_a;
        s2_m <= s1_m; s3_m <= s2_m; s4_m <= s3_m; s5_m <= s4_m; s6_m <= s5_m; s7_m <= s6_m;
        s8_m <= s7_m;
        s1_cc <= sc;
        s2_mult <= p_mult;
        s2_shift <= p_rd[71:64];
        s2_flip <= p_rd[72];
        s3_shift <= s2_shift;
        s4_shift <= s3_shift;
        s4_rnd <= 64'sd1 <<< (s3_shift - 8'd1);
        s4_mhi <= {64{1'b1}} << ({1'b0, s3_shift} + 9'd8);
        s5_mhi <= s4_mhi;
        s5_shift <= s4_shift;
        s6_shift <= s5_shift;
        s4_bit <= s3_bit; s5_bit <= s4_bit; s6_bit <= s5_bit; s7_bit <= s6_bit;
    end

    generate
        for (gi = 0; gi < R; gi = gi + 1) begin : g_post
            wire signed [15:0] sh = s2_sum[gi][31:16];
            wire signed [16:0] sl = {1'b0, s2_sum[gi][15:0]};
            wire signed [15:0] mh = s2_mult[31:16];
            wire signed [16:0] ml = {1'b0, s2_mult[15:0]};
            wire signed [63:0] mid = {{31{s3_hl[gi][32]}}, s3_hl[gi]}
                                   + {{31{s3_lh[gi][32]}}, s3_lh[gi]};
            // (the shifts read wire copies of the lanes' words: Icarus 11 mis-emits a shift of
            // an array word in a continuous assignment)
            wire signed [63:0] s5w = s5_sum[gi];
            wire signed [63:0] c6 = s5w >>> {s5_shift[7:3], 3'b000};
            wire signed [63:0] s6w = s6_c[gi];
            wire signed [63:0] f7 = s6w >>> s6_shift[2:0];
            wire signed [8:0]  cval = s7_big[gi] ? (s7_neg[gi] ? p_lo : p_hi)
                                    : (s7_q[gi] < p_lo) ? p_lo
                                    : (s7_q[gi] > p_hi) ? p_hi : s7_q[gi];
            always @(posedge clk) begin
                s1_m[gi] <= (gi < col_npix);
                if (s0_v) begin
                    s1_acc[gi] <= arr_col_data[gi*ACC_BITS +: ACC_BITS];
                end
                if (s1_v) begin
                    s2_sum[gi] <= s1_acc[gi] + p_bias;
                end
                if (s2_v) begin
                    s3_hh[gi] <= sh * mh;
                    s3_hl[gi] <= sh * ml;
                    s3_lh[gi] <= sl * mh;
                    s3_ll[gi] <= s2_sum[gi][15:0] * s2_mult[15:0];
                    s3_bit[gi] <= (s2_sum[gi] >= s2_mult) ^ s2_flip;
                end
                if (s3_v) begin
                    s4_prod[gi] <= $signed({s3_hh[gi], s3_ll[gi]}) + (mid <<< 16);
                end
                if (s4_v) begin
                    s5_sum[gi] <= s4_prod[gi] + s4_rnd;
                end
                if (s5_v) begin
                    s6_c[gi] <= c6;
                    s6_big[gi] <= |((s5_sum[gi] ^ {64{s5_sum[gi][63]}}) & s5_mhi);
                    s6_neg[gi] <= s5_sum[gi][63];
                end
                if (s6_v) begin
                    s7_q[gi] <= f7[8:0];
                    s7_big[gi] <= s6_big[gi];
                    s7_neg[gi] <= s6_neg[gi];
                end
                if (s7_v) begin
                    s8_d[gi*8 +: 8] <= m_thresh ? (s7_bit[gi] ? 8'h01 : 8'hFF) : cval[7:0];
                end
            end
        end
    endgenerate

    // ---------------------------------------------------------------- vector engine
    // R lanes: lane i computes output element e + i (e = vout, a multiple of R; elements in
    // NCHW order, so a group of R outputs is one R-byte ofmap write). Every lane walks the
    // same window (vr, vs: shared counters, vwoff = vr * wstep + vs) from its own origin
    // (vly, vlx: top-left input coordinates, vlb: ifmap byte address) in its own ifmap copy.
    // After the last window element every lane steps by R outputs: x += R mod Q, y +=
    // (R div Q) mod P with the carries of x into y and of y into the channel (no divider:
    // the compiler gives the steps, ar_ox / ar_oy / ar_base, and the wrap constants).
    // Lane origins start from a cursor (index R) that steps by one output per cycle during
    // S_VINIT while the lanes shift it in (R cycles).
    localparam integer VW = IF_ADDR + 3;  // signed coordinates: |y|, |x| < 4 * ifmap bytes
    reg  [31:0] vr, vs, vwoff, vg, vout, vi;
    reg  signed [VW-1:0] vly [0:R];
    reg  signed [VW-1:0] vlx [0:R];
    reg  [IF_ADDR-1:0]   vlb [0:R];
    // the steps' constants, registered from the descriptor (stable while the layer runs):
    // index 0 the lanes' step by R, index 1 the cursor's step by one
    reg  signed [VW-1:0] vk_x0 [0:1];   // x step without / with the wrap of x
    reg  signed [VW-1:0] vk_x1 [0:1];
    reg  signed [VW-1:0] vk_y [0:1][0:3];  // y step for the carries {c2, c1}
    reg  [IF_ADDR-1:0]   vk_b [0:1][0:3];  // address step for the carries {c2, c1}
    reg  signed [VW-1:0] vk_xt, vk_yt;      // x wraps when x' >= vk_xt, y when y' >= vk_yt
    // the same tests on the old coordinates (Fmax: side by side with the sums): x wraps when
    // x >= vk_xq[K], y when y >= vk_yq[K][c1]
    reg  signed [VW-1:0] vk_xq [0:1];
    reg  signed [VW-1:0] vk_yq [0:1][0:1];
    reg  [31:0] vk_kr1, vk_ks1, vk_g1, vk_wgap;
    reg  [R-1:0] vk_lmask;               // lanes of the last group
    reg  signed [63:0] vk_rnd;           // 2^(s-1) (0 for max pooling)
    reg  [7:0]           vk_sh;            // s (0 for max pooling)
    reg  [63:0]          vk_mhi;           // bits of a rounded sum above a 9-bit result
    wire signed [VW-1:0] vd_sh = desc[D_SH][VW-1:0];
    integer vki;
    always @(posedge clk) begin
        vk_x0[0] <= desc[D_AR_OX][VW-1:0];
        vk_x0[1] <= desc[D_SW][VW-1:0];
        vk_x1[0] <= desc[D_AR_OX][VW-1:0] - desc[D_WRAP_OX][VW-1:0];
        vk_x1[1] <= desc[D_SW][VW-1:0] - desc[D_WRAP_OX][VW-1:0];
        vk_y[0][0] <= desc[D_AR_OY][VW-1:0];
        vk_y[0][1] <= desc[D_AR_OY][VW-1:0] + vd_sh;
        vk_y[0][2] <= desc[D_AR_OY][VW-1:0] - desc[D_V_OYW][VW-1:0];
        vk_y[0][3] <= desc[D_AR_OY][VW-1:0] + vd_sh - desc[D_V_OYW][VW-1:0];
        vk_y[1][0] <= {VW{1'b0}};
        vk_y[1][1] <= vd_sh;
        vk_y[1][2] <= -desc[D_V_OYW][VW-1:0];
        vk_y[1][3] <= vd_sh - desc[D_V_OYW][VW-1:0];
        vk_b[0][0] <= desc[D_AR_BASE][IF_ADDR-1:0];
        vk_b[0][1] <= desc[D_AR_BASE][IF_ADDR-1:0] + desc[D_WRAP_BASE][IF_ADDR-1:0];
        vk_b[0][2] <= desc[D_AR_BASE][IF_ADDR-1:0] + desc[D_V_CWRAP][IF_ADDR-1:0];
        vk_b[0][3] <= desc[D_AR_BASE][IF_ADDR-1:0] + desc[D_WRAP_BASE][IF_ADDR-1:0]
                      + desc[D_V_CWRAP][IF_ADDR-1:0];
        vk_b[1][0] <= desc[D_SW][IF_ADDR-1:0];
        vk_b[1][1] <= desc[D_SW][IF_ADDR-1:0] + desc[D_WRAP_BASE][IF_ADDR-1:0];
        vk_b[1][2] <= desc[D_SW][IF_ADDR-1:0] + desc[D_V_CWRAP][IF_ADDR-1:0];
        vk_b[1][3] <= desc[D_SW][IF_ADDR-1:0] + desc[D_WRAP_BASE][IF_ADDR-1:0]
                      + desc[D_V_CWRAP][IF_ADDR-1:0];
        vk_xt <= desc[D_OX0][VW-1:0] + desc[D_WRAP_OX][VW-1:0];
        vk_yt <= desc[D_OY0][VW-1:0] + desc[D_V_OYW][VW-1:0];
        vk_xq[0] <= desc[D_OX0][VW-1:0] + desc[D_WRAP_OX][VW-1:0] - desc[D_AR_OX][VW-1:0];
        vk_xq[1] <= desc[D_OX0][VW-1:0] + desc[D_WRAP_OX][VW-1:0] - desc[D_SW][VW-1:0];
        vk_yq[0][0] <= desc[D_OY0][VW-1:0] + desc[D_V_OYW][VW-1:0] - desc[D_AR_OY][VW-1:0];
        vk_yq[0][1] <= desc[D_OY0][VW-1:0] + desc[D_V_OYW][VW-1:0] - desc[D_AR_OY][VW-1:0]
                       - vd_sh;
        vk_yq[1][0] <= desc[D_OY0][VW-1:0] + desc[D_V_OYW][VW-1:0];
        vk_yq[1][1] <= desc[D_OY0][VW-1:0] + desc[D_V_OYW][VW-1:0] - vd_sh;
        vk_kr1 <= desc[D_KR] - 32'd1;
        vk_ks1 <= desc[D_KS] - 32'd1;
        vk_g1 <= desc[D_NPT] - 32'd1;
        vk_wgap <= desc[D_WSTEP] - desc[D_KS] + 32'd1;
        for (vki = 0; vki < R; vki = vki + 1) vk_lmask[vki] <= (vki < desc[D_V_LAST]);
        vk_rnd <= (vmode == 2'd0) ? 64'sd0 : 64'sd1 <<< (desc[D_SHIFT][7:0] - 8'd1);
        vk_sh <= (vmode == 2'd0) ? 8'd0 : desc[D_SHIFT][7:0];
        vk_mhi <= {64{1'b1}} << ({1'b0, (vmode == 2'd0) ? 8'd0 : desc[D_SHIFT][7:0]} + 9'd8);
    end

    wire v_run   = (st == S_VRUN);
    wire v_first = (vr == 0) & (vs == 0);
    wire v_lastw = (vr == vk_kr1) & (vs == vk_ks1);
    wire v_end   = v_lastw & (vg == vk_g1);
    wire [VW-1:0] v_r = vr[VW-1:0];
    wire [VW-1:0] v_s = vs[VW-1:0];
    wire signed [VW-1:0] vd_h = d_h[VW-1:0];
    wire signed [VW-1:0] vd_w = d_w[VW-1:0];
    reg  [R-1:0] v_inb;
    generate
        for (gi = 0; gi <= R; gi = gi + 1) begin : g_vstep
            localparam integer K = (gi == R) ? 1 : 0;
            localparam integer NX = (gi == R) ? R : gi + 1;  // lane gi shifts in from gi + 1
            // next origin: carry-select over the wrap of x (c1) and of y (c2), every sum and
            // test side by side (Fmax). Blocking temporaries of the block, computed only in a
            // cycle the origin changes, and one non-blocking write per register (Verilator:
            // as continuous assignments every lane's step ran every cycle, and each write of
            // an array element costs a flag and a value cleared and tested every cycle)
            reg                  c1, c2;
            reg signed [VW-1:0]  nx, ny, ny0, ny1, ny2, ny3;
            reg [IF_ADDR-1:0]    nb, nb0, nb1, nb2, nb3;
            /* verilator lint_off BLKSEQ */
            always @(posedge clk) begin
                if ((gi == R) ? (st == S_DECODE || st == S_VINIT)
                              : (st == S_VINIT || (v_run & v_lastw))) begin
                    if (gi == R && st == S_DECODE) begin  // the cursor's first origin
                        ny = desc[D_OY0][VW-1:0];
                        nx = desc[D_OX0][VW-1:0];
                        nb = desc[D_BASE0][IF_ADDR-1:0];
                    end else if (gi < R && st == S_VINIT) begin  // shift the cursor in
                        ny = vly[NX];
                        nx = vlx[NX];
                        nb = vlb[NX];
                    end else begin
                        c1 = (vlx[gi] >= vk_xq[K]);
                        c2 = c1 ? (vly[gi] >= vk_yq[K][1]) : (vly[gi] >= vk_yq[K][0]);
                        nx = c1 ? vlx[gi] + vk_x1[K] : vlx[gi] + vk_x0[K];
                        ny0 = vly[gi] + vk_y[K][0];
                        ny1 = vly[gi] + vk_y[K][1];
                        ny2 = vly[gi] + vk_y[K][2];
                        ny3 = vly[gi] + vk_y[K][3];
                        nb0 = vlb[gi] + vk_b[K][0];
                        nb1 = vlb[gi] + vk_b[K][1];
                        nb2 = vlb[gi] + vk_b[K][2];
                        nb3 = vlb[gi] + vk_b[K][3];
                        case ({c2, c1})
                            2'd0: begin ny = ny0; nb = nb0; end
                            2'd1: begin ny = ny1; nb = nb1; end
                            2'd2: begin ny = ny2; nb = nb2; end
                            default: begin ny = ny3; nb = nb3; end
                        endcase
                    end
                    vly[gi] <= ny;
                    vlx[gi] <= nx;
                    vlb[gi] <= nb;
                end
            end
            /* verilator lint_on BLKSEQ */
            if (gi < R) begin : g_lane
                assign v_ra[gi*IF_ADDR +: IF_ADDR] = vlb[gi] + vwoff[IF_ADDR-1:0];
            end
        end
    endgenerate
    // each lane's window element inside the input (or no bounds), while the engine runs (0
    // otherwise: v1_in is read only for elements issued in S_VRUN; Verilator: the lanes'
    // tests do not run every cycle)
    reg signed [VW-1:0] v_iy, v_ix;
    integer vli;
    always @(*) begin
        v_inb = {R{1'b0}};
        v_iy = {VW{1'b0}};
        v_ix = {VW{1'b0}};
        if (v_run) begin
            for (vli = 0; vli < R; vli = vli + 1) begin
                v_iy = vly[vli] + $signed(v_r);
                v_ix = vlx[vli] + $signed(v_s);
                v_inb[vli] = nobounds
                             | ((v_iy >= 0) & (v_iy < vd_h) & (v_ix >= 0) & (v_ix < vd_w));
            end
        end
    end

    // the shared window walk
    always @(posedge clk) begin
        if (st == S_DECODE) begin
            vr <= 32'd0; vs <= 32'd0; vwoff <= 32'd0; vg <= 32'd0; vout <= 32'd0; vi <= 32'd0;
        end else if (st == S_VINIT) begin
            vi <= vi + 32'd1;
        end else if (v_run) begin
            if (vs == vk_ks1) begin
                vs <= 32'd0;
                if (vr == vk_kr1) begin
                    vr <= 32'd0;
                    vwoff <= 32'd0;
                    vg <= vg + 32'd1;
                    vout <= vout + R;
                end else begin
                    vr <= vr + 32'd1;
                    vwoff <= vwoff + vk_wgap;
                end
            end else begin
                vs <= vs + 32'd1;
                vwoff <= vwoff + 32'd1;
            end
        end
    end

    // pipeline, every lane (registers v1_*, vw_*, v2_*, vp_*, v3_* hold the element issued 1
    // to 5 cycles earlier): issue (the ifmap reads), 1 the ifmap word (registered, Fmax), w the
    // registered word (its byte is selected), 2 the byte (times the multiplier's low and high
    // 16 bits: one DSP multiplier each, Fmax), p the two partial products, 3 the product
    // (accumulated: max or sum); after the window's last element 4 the accumulator (+
    // rounding), 5 the rounded sum (arithmetic shift by the shift's multiple of 8), c the
    // coarsely shifted sum (the rest of the shift), 6 the shifted value (clamped to a byte),
    // 7 the R bytes, written to the ofmap at once (masked: lanes past C*P*Q)
    reg        v1_v, v1_first, v1_last, v1_m1, v2_v, v2_first, v2_last, v2_m1;
    reg        vw_v, vw_first, vw_last, vw_m1, vp_v, vp_first, vp_last;
    reg        v3_v, v3_first, v3_last, v4_v, v5_v, vc_v, v6_v, v7_v;
    reg  [R-1:0] v1_in, vw_in, v2_in, vp_in, v3_in;
    reg  [R-1:0] v1_m, vw_m, v2_m, vp_m, v3_m, v4_m, v5_m, vc_m, v6_m, v7_m;
    reg  [31:0] v1_out, vw_out, v2_out, vp_out, v3_out, v4_out, v5_out, vc_out, v6_out, v7_out;
    reg  [8*R-1:0] v7_d;
    reg  signed [7:0]  v2_x [0:R-1];
    reg  signed [7:0]  vp_x [0:R-1];
    reg  signed [24:0] vp_tl [0:R-1];   // byte * the multiplier's low 16 bits (unsigned)
    reg  signed [23:0] vp_th [0:R-1];   // byte * the multiplier's high 16 bits (signed)
    reg  signed [7:0]  v3_x [0:R-1];
    reg  signed [39:0] v3_t [0:R-1];
    reg  signed [63:0] vacc [0:R-1];
    reg  signed [63:0] v5_s [0:R-1];
    reg  signed [63:0] vc_c [0:R-1];      // shifted by the shift's multiple of 8 (Fmax)
    reg  [R-1:0]       vc_big, vc_neg;
    reg  signed [8:0]  v6_q [0:R-1];      // the result's low 9 bits
    reg  [R-1:0]       v6_big, v6_neg;    // the result is outside 9 bits / negative
    wire signed [8:0]  v_lo = d_lo[8:0];  // lo, hi fit a byte (the compiler checks)
    wire signed [8:0]  v_hi = d_hi[8:0];
    wire signed [63:0] v_init = (vmode == 2'd0) ? -64'sd256 : 64'sd0;
    wire signed [31:0] v_mult = v2_m1 ? desc[D_MULT1] : desc[D_MULT0];
    wire signed [16:0] v_ml = {1'b0, v_mult[15:0]};
    wire signed [15:0] v_mh = v_mult[31:16];

    always @(posedge clk) begin
        if (rst) begin
            v1_v <= 1'b0; v2_v <= 1'b0; v3_v <= 1'b0; v4_v <= 1'b0; v5_v <= 1'b0;
            vc_v <= 1'b0; v6_v <= 1'b0; v7_v <= 1'b0;
        end else begin
            v1_v <= v_run;
            vw_v <= v1_v;
            v2_v <= vw_v;
            vp_v <= v2_v;
            v3_v <= vp_v;
            v4_v <= v3_v & v3_last;
            v5_v <= v4_v;
            vc_v <= v5_v;
            v6_v <= vc_v;
            v7_v <= v6_v;
        end
        v1_first <= v_first; v1_last <= v_lastw; v1_m1 <= (vr != 0); v1_in <= v_inb;
        v1_m <= (vg == vk_g1) ? vk_lmask : {R{1'b1}};
        v1_out <= vout + {{(32-LB){1'b0}}, o_off} + o_base;  // ofmap byte of lane 0's output
        vw_first <= v1_first; vw_last <= v1_last; vw_m1 <= v1_m1; vw_in <= v1_in;
        vw_m <= v1_m; vw_out <= v1_out;
        v2_first <= vw_first; v2_last <= vw_last; v2_m1 <= vw_m1; v2_in <= vw_in;
        v2_m <= vw_m; v2_out <= vw_out;
        vp_first <= v2_first; vp_last <= v2_last; vp_in <= v2_in; vp_m <= v2_m;
        vp_out <= v2_out;
        v3_first <= vp_first; v3_last <= vp_last; v3_in <= vp_in; v3_m <= vp_m;
        v3_out <= vp_out;
        v4_m <= v3_m; v4_out <= v3_out;
        v5_m <= v4_m; v5_out <= v4_out;
        vc_m <= v5_m; vc_out <= v5_out;
        v6_m <= vc_m; v6_out <= vc_out;
        v7_m <= v6_m; v7_out <= v6_out;
    end

    generate
        for (gi = 0; gi < R; gi = gi + 1) begin : g_vlane
            // max pooling keeps a value in [-256, 127]: a 9-bit compare
            wire signed [63:0] x64 = {{56{v3_x[gi][7]}}, v3_x[gi]};
            wire signed [63:0] t64 = {{24{v3_t[gi][39]}}, v3_t[gi]};
            wire signed [63:0] base = v3_first ? v_init : vacc[gi];
            wire signed [8:0]  base9 = base[8:0];
            wire signed [63:0] nxt = !v3_in[gi] ? base
                                   : (vmode == 2'd0) ? (($signed({v3_x[gi][7], v3_x[gi]}) > base9) ? x64 : base)
                                   : base + t64;
            // the round-shift keeps 9 bits and whether the rest is the sign: the clamp to
            // [lo, hi] (within a byte) needs no more
            // (the shift reads a wire copy of the lane's word: Icarus 11 mis-emits a shift of an
            // array word in a continuous assignment, a corrupt .vvp)
            // (in two stages, Fmax: by the shift's multiple of 8, then the rest)
            wire signed [63:0] s5 = v5_s[gi];
            wire signed [63:0] c5 = s5 >>> {vk_sh[7:3], 3'b000};
            wire signed [63:0] sc6 = vc_c[gi];
            wire signed [63:0] q = sc6 >>> vk_sh[2:0];
            wire signed [8:0]  vcl = v6_big[gi] ? (v6_neg[gi] ? v_lo : v_hi)
                                   : (v6_q[gi] < v_lo) ? v_lo
                                   : (v6_q[gi] > v_hi) ? v_hi : v6_q[gi];
            always @(posedge clk) begin
                // (the datapath registers gated as the post-processing's, not the byte's
                // delay line v2_x, vp_x, v3_x: SRL16E)
                v2_x[gi] <= if_rd[gi*8 +: 8];
                vp_x[gi] <= v2_x[gi];
                v3_x[gi] <= vp_x[gi];
                if (v2_v) begin
                    vp_tl[gi] <= v2_x[gi] * v_ml;
                    vp_th[gi] <= v2_x[gi] * v_mh;
                end
                if (vp_v) begin
                    v3_t[gi] <= ({{16{vp_th[gi][23]}}, vp_th[gi]} <<< 16)
                                + {{15{vp_tl[gi][24]}}, vp_tl[gi]};
                end
                if (v3_v) vacc[gi] <= nxt;
                if (v4_v) begin
                    v5_s[gi] <= vacc[gi] + vk_rnd;
                end
                if (v5_v) begin
                    vc_c[gi] <= c5;
                    vc_big[gi] <= |((v5_s[gi] ^ {64{v5_s[gi][63]}}) & vk_mhi);
                    vc_neg[gi] <= v5_s[gi][63];
                end
                if (vc_v) begin
                    v6_q[gi] <= q[8:0];
                    v6_big[gi] <= vc_big[gi];
                    v6_neg[gi] <= vc_neg[gi];
                end
            end
            always @(posedge clk) if (v6_v) v7_d[gi*8 +: 8] <= vcl[7:0];
        end
    endgenerate

    // ofmap write port: R bytes of the post-processing or of the vector engine, at any byte
    // address: a window of two consecutive words (one in each bank)
    wire [O_ADDR-1:0]  ow_a = v7_v ? v7_out[O_ADDR-1:0] : s8_a[O_ADDR-1:0];
    wire [8*R-1:0]     ow_d = v7_v ? v7_d : s8_d;
    wire [R-1:0]       ow_m = v7_v ? v7_m : (s8_v ? s8_m : {R{1'b0}});
    always @(*) begin
        o_win_d = {{(16*O_WB-8*R){1'b0}}, ow_d} << {ow_a[O_WBL-1:0], 3'b000};
        o_win_m = {{(2*O_WB-R){1'b0}}, ow_m} << ow_a[O_WBL-1:0];
        o_word = ow_a[O_ADDR-1:O_WBL];
    end
    // a forwarded write takes the ifmap write port in the next cycle: while the load engine
    // runs, the DMA accepts no read beat in this one (its beat would be written then)
    assign dma_hold = (ld_st == LS_WAIT) & fwd & (|ow_m);
    // the same write forwarded into the ifmap copies, one cycle later (registered: Fmax);
    // fwd_k: ifmap byte minus ofmap byte of the pass (D_FWD_OFS, the pass's bus word offset
    // from out_addr's, the ofmap half), stable while the pass streams
    reg  [31:0]        fwd_k;
    always @(posedge clk) begin
        fwd_k <= desc[D_FWD_OFS] - o_base + {pass_oaddr[31:LB], {LB{1'b0}}}
                 - {desc[D_OUT_ADDR][31:LB], {LB{1'b0}}};
    end
    generate
        if (BUS % R == 0) begin : g_fwd
            reg  [31:0]  fq_a;
            reg  [R-1:0] fq_m;
            reg  [8*R-1:0] fq_d;
            always @(posedge clk) begin
                if (rst) begin
                    fq_m <= {R{1'b0}};
                end else begin
                    fq_m <= fwd ? ow_m : {R{1'b0}};
                end
                fq_a <= {{(32-O_ADDR){1'b0}}, ow_a} + fwd_k;
                fq_d <= ow_d;
            end
            assign fw_wa = fq_a[IF_ADDR-1:LB];
            wire [BUS+R-1:0] fq_wm = {{BUS{1'b0}}, fq_m} << fq_a[LB-1:0];
            assign fw_we = fq_wm[BUS-1:0];
            assign fw_wd = {(BUS/R){fq_d}};
        end else begin : g_nofwd  // the compiler does not forward (R does not divide BUS)
            assign fw_wa = {IF_WADDR{1'b0}};
            assign fw_we = {BUS{1'b0}};
            assign fw_wd = {(8*BUS){1'b0}};
        end
    endgenerate

    // ---------------------------------------------------------------- main sequencer
    wire [31:0] pass_left = desc[D_NTILES] - t_ps;
    // Address products without a 32 x 32 multiplier in one cycle (Fmax): the weight pass's
    // offset t_ps * TILE_W grows by the pass's length np * TILE_W = min(NTILES * TILE_W -
    // tw_ps, TPP * TILE_W) (layer constants, 2-stage products of descriptor words, ready
    // before the first S_PASS); the pass's output address (kg0_ps + ktc_ps) * PQ is a 3-stage
    // product of registers set in S_WB_W, read in S_LP (>= 3 cycles later).
    reg  [31:0] tw_ps, lw_len;                   // t_ps * TILE_W, np * TILE_W
    reg  [31:0] ntw_ll, ntw_lh, ntw_hl, ntw, tpw_l, tpw_h, tpw;
    reg  [31:0] po_k, po_ll, po_lh, po_hl, po_prod;
    // weight prefetch: this pass's tiles were loaded into its slot during the pass before;
    // the next pass's loads (DRAM address, length) start with the pass's S_INIT
    // (or, op bit 14, the first pass was loaded during the layer before); the last pass
    // starts the next compute layer's first pass's loads with op bit 13
    wire        pf_hit  = (t_ps != 32'd0) ? pf : xin;
    wire [31:0] pf_left = pass_left - np;
    wire        pf_init = (st == S_INIT) & (icnt == 32'd0);
    wire        pf_go   = pf_init & ((np < pass_left) ? pf : xpf);
    reg  [31:0] pf_a, pf_wl, pf_pa, pf_pl;
    always @(posedge clk) begin
        ntw_ll <= desc[D_NTILES][15:0] * desc[D_TILE_W][15:0];
        ntw_lh <= desc[D_NTILES][15:0] * desc[D_TILE_W][31:16];
        ntw_hl <= desc[D_NTILES][31:16] * desc[D_TILE_W][15:0];
        ntw <= ntw_ll + ((ntw_lh + ntw_hl) << 16);
        tpw_l <= desc[D_TPP][15:0] * desc[D_TILE_W][15:0];
        tpw_h <= desc[D_TPP][15:0] * desc[D_TILE_W][31:16];
        tpw <= tpw_l + (tpw_h << 16);
        po_k <= kg0_ps + ktc_ps;
        po_ll <= po_k[15:0] * desc[D_OUT_STRIDE][15:0];
        po_lh <= po_k[15:0] * desc[D_OUT_STRIDE][31:16];
        po_hl <= po_k[31:16] * desc[D_OUT_STRIDE][15:0];
        po_prod <= po_ll + ((po_lh + po_hl) << 16);
    end
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
            dma_post <= 1'b0;
            if_wofs <= 32'd0;
            pass_oaddr <= 32'd0;
            o_wofs <= 32'd0;
            o_base <= 32'd0;
            pf_st <= PF_IDLE;
            pf_x <= 1'b0;
            ld_st <= LS_IDLE;
            wm_lim <= WM_ALL;
        end else begin
            dma_valid <= 1'b0;
            dma_post <= 1'b0;
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
                    pass_oaddr <= desc[D_OUT_ADDR];
                    o_base <= desc[D_O_BASE];
                    in_a <= desc[D_IN_ADDR];
                    in_b <= desc[D_IN_IFOFS] + {{(32-LB){1'b0}}, desc[D_IN_ADDR][LB-1:0]};
                    irun <= 32'd1;
                    wm_lim <= WM_ALL;
                    // a compute layer loads its first pass's weights and parameters first: they
                    // do not wait for a posted write-back, the input load (S_IN) does
                    if (op == 2'd0) begin
                        if (!dma_wbusy) begin
                            done <= 1'b1;
                            st <= S_IDLE;
                        end
                    end else begin
                        st <= (op == 2'd1) ? S_PASS : S_IN;
                    end
                end
                S_IN: if (res_a) begin
                    // resident: no load; with owait, the posted write-back drains the ofmap
                    // half this layer writes
                    if (!owait || !dma_wbusy) begin
                        st <= (op == 2'd1) ? S_INIT : (vmode == 2'd2) ? S_IN2 : S_VINIT;
                    end
                end else if (!dma_wbusy && wm && op == 2'd1) begin
                    // load watermark: the load engine loads the input beside the compute
                    gleft <= desc[D_HW][WMW-1:0];
                    wm_lim <= $signed(in_b[WMW-1:0]);
                    ld_st <= LS_CMD;
                    st <= S_INIT;
                end else if (!dma_wbusy) begin  // the previous layer's output is in DRAM
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= in_a; dma_len <= desc[D_IN_LEN];
                    if_wofs <= in_b >> LB;
                    st <= S_IN_W;
                end
                S_IN_W: if (dma_done) begin
                    if (irun < desc[D_IN_RUNS]) begin  // the next run of a strided load
                        irun <= irun + 32'd1;
                        in_a <= in_a_nx;
                        in_b <= in_b_nx;
                        st <= S_IN;
                    end else if (op == 2'd2 && vmode == 2'd2) begin
                        st <= S_IN2;
                    end else if (op == 2'd2) begin
                        st <= S_VINIT;
                    end else begin
                        st <= S_INIT;
                    end
                end
                S_IN2: if (res_b) begin
                    st <= S_VINIT;
                end else if (!dma_wbusy) begin  // (after a resident first input) in DRAM
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= desc[D_IN2_ADDR]; dma_len <= desc[D_IN_LEN];
                    if_wofs <= desc[D_IN2_OFS] >> LB;
                    st <= S_IN2_W;
                end
                S_IN2_W: if (dma_done) st <= S_VINIT;
                S_PASS: begin
                    np <= (pass_left < desc[D_TPP]) ? pass_left : desc[D_TPP];
                    lw_len <= (pass_left < desc[D_TPP]) ? ntw - tw_ps : tpw;
                    st <= S_LW;
                end
                S_LW: if (pf_hit) begin
                    st <= S_PF;  // prefetched: no loads (S_PF: po_prod is ready in S_LP)
                end else begin
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= desc[D_W_ADDR] + tw_ps;
                    dma_len <= w_keep ? 32'd0 : lw_len;  // kept: an empty command
                    st <= S_LW_W;
                end
                S_PF: st <= S_LP;
                S_LW_W: if (dma_done) st <= S_LP;
                S_LP: begin
                    dma_valid <= ~pf_hit; dma_write <= 1'b0;
                    dma_addr <= desc[D_P_ADDR] + t_ps * P_TILE;
                    dma_len <= w_keep ? 32'd0 : np * P_TILE;
                    pass_oaddr <= desc[D_OUT_ADDR] + po_prod;
                    wb_a <= desc[D_OUT_ADDR] + po_prod;
                    wb_o <= 32'd0;
                    st <= !pf_hit ? S_LP_W : (t_ps == 32'd0) ? S_IN : S_INIT;
                end
                S_LP_W: if (dma_done) st <= (t_ps == 32'd0) ? S_IN : S_INIT;
                S_INIT: if (icnt == R - 1) st <= S_TILE;
                S_TILE: st <= S_STREAM;
                S_STREAM: if (tile_end & ~more_tip & last_pt) st <= S_FLUSH;
                S_FLUSH: if (fl == FLUSH_C - 1) st <= S_WB;
                S_WB: if (!dma_wbusy && !pf_busy && !ld_busy) begin  // (prefetch, load done)
                    // the layer's last write-back is posted: the next descriptor starts at once
                    // (a strided write-back: its last run); a resident layer may get here
                    // while the previous layer's posted write-back still drains
                    dma_valid <= 1'b1; dma_write <= 1'b1;
                    dma_post <= (t_ps + np >= desc[D_NTILES])
                                & ((desc[D_OUT_RUN] == 32'd0) | (wb_o + desc[D_O_PITCH] >= obase));
                    if (desc[D_OUT_RUN] == 32'd0) begin
                        // the pass's output channels, contiguous in DRAM
                        dma_addr <= pass_oaddr;
                        dma_len <= obase;
                        o_wofs <= o_base >> LB;
                    end else begin
                        // one run per output channel
                        dma_addr <= wb_a;
                        dma_len <= desc[D_OUT_RUN];
                        o_wofs <= (o_base + {{(32-LB){1'b0}}, o_off} + wb_o) >> LB;
                    end
                    st <= S_WB_W;
                end
                S_WB_W: if (dma_done | dma_post) begin
                    if (desc[D_OUT_RUN] != 32'd0 && wb_o + desc[D_O_PITCH] < obase) begin
                        wb_o <= wb_o + desc[D_O_PITCH];
                        wb_a <= wb_a + desc[D_OUT_STRIDE];
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
                S_VINIT: if (vi == R - 1) st <= S_VRUN;
                S_VRUN: if (v_end) st <= S_FLUSH;
                S_VWB: if (!dma_wbusy) begin  // (resident inputs: a posted write may drain)
                    dma_valid <= 1'b1; dma_write <= 1'b1;
                    o_wofs <= o_base >> LB;
                    dma_addr <= desc[D_OUT_ADDR];
                    dma_len <= desc[D_C_PQ];
                    st <= S_VWB_W;
                end
                S_VWB_W: if (dma_done) st <= S_NEXT;
                default: st <= S_IDLE;
            endcase
            // the vector op leaves FLUSH for its single write-back
            if (st == S_FLUSH && fl == FLUSH - 1 && op == 2'd2) st <= S_VWB;
            // the prefetch engine: started at the first cycle of a pass's S_INIT when the
            // layer has a next pass, it loads that pass's weight tiles and parameter records
            // into the other slot (the one of the pass before, which is finished)
            case (pf_st)
                PF_IDLE: if (pf_go) begin
                    pf_x <= (np >= pass_left);  // the last pass: the next layer's first
                    if (np >= pass_left) begin
                        pf_a <= desc[X_W_ADDR];
                        pf_wl <= desc[X_W_LEN];
                        pf_pa <= desc[X_P_ADDR];
                        pf_pl <= desc[X_P_LEN];
                    end else begin
                        pf_a <= desc[D_W_ADDR] + tw_ps + lw_len;
                        pf_wl <= (pf_left < desc[D_TPP]) ? ntw - tw_ps - lw_len : tpw;
                        pf_pa <= desc[D_P_ADDR] + (t_ps + np) * P_TILE;
                        pf_pl <= ((pf_left < desc[D_TPP]) ? pf_left : desc[D_TPP]) * P_TILE;
                    end
                    pf_st <= PF_W;
                end
                PF_W: if (!ld_busy) begin  // (after the watermarked input load)
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= pf_a; dma_len <= pf_wl;
                    pf_st <= PF_W_W;
                end
                PF_W_W: if (dma_done) pf_st <= PF_P;
                PF_P: begin
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= pf_pa; dma_len <= pf_pl;
                    pf_st <= PF_P_W;
                end
                PF_P_W: if (dma_done) pf_st <= PF_IDLE;
                default: pf_st <= PF_IDLE;
            endcase
            // the load engine (op bit 16): for each row group of in_grp bytes per channel (the
            // last one what is left of the channel's plane of hw bytes), one run per channel
            // (cg channels, hw bytes apart in DRAM and in the ifmap: an untiled input of one
            // group); after a group's last run every channel's rows are in up to wm_lim,
            // after the last group all of them
            case (ld_st)
                LS_IDLE: begin end  // (started by S_IN)
                LS_CMD: begin
                    dma_valid <= 1'b1; dma_write <= 1'b0;
                    dma_addr <= in_a;
                    dma_len <= ld_more ? desc[X_IN_GRP] : {{(32-WMW){1'b0}}, gleft};
                    if_wofs <= in_b >> LB;
                    ld_st <= LS_WAIT;
                end
                LS_WAIT: if (dma_done) begin
                    if (ld_chan) begin  // the group's next channel
                        irun <= irun + 32'd1;
                        in_a <= in_a_nx;
                        in_b <= in_b_nx;
                        ld_st <= LS_CMD;
                    end else if (ld_more) begin  // next group
                        irun <= 32'd1;
                        gleft <= gleft - desc[X_IN_GRP][WMW-1:0];
                        in_a <= in_a_nx;
                        in_b <= in_b_nx;
                        wm_lim <= wm_lim + $signed(desc[X_IN_GRP][WMW-1:0]);
                        ld_st <= LS_CMD;
                    end else begin
                        wm_lim <= WM_ALL;
                        ld_st <= LS_IDLE;
                    end
                end
                default: ld_st <= LS_IDLE;
            endcase
        end
    end

    // counters of the compute loops
    always @(posedge clk) begin
        if (rst) begin
            t_ps <= 32'd0; icnt <= 32'd0; fl <= 32'd0; slot <= 1'b0;
        end else begin
            case (st)
                S_DECODE: begin
                    t_ps <= 32'd0;
                    tw_ps <= 32'd0;
                    slot <= s0;  // (op bit 15: the first pass computes on slot 1)
                    g_ps <= 32'd0; ktc_ps <= 32'd0; kg0_ps <= 32'd0; cb_ps <= 32'd0;
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
                    wptr <= w_rbase; obase <= 32'd0;
                    j <= 32'd0; cl <= 32'd0; kr <= 32'd0; ks <= 32'd0; woff <= 32'd0;
                    cofs <= 32'd0;
                end
                S_STREAM: begin
                    // beat counters (while issuing), then the step to the next tile at tile_end
                    if (!wm_stall) j <= j + 32'd1;
                    if (issue) begin
                        if (ks == vk_ks1) begin
                            ks <= 32'd0;
                            if (kr == vk_kr1) begin
                                kr <= 32'd0;
                                woff <= 32'd0;
                                cl <= cl + 32'd1;
                                cofs <= cofs + desc[D_HW];
                            end else begin
                                kr <= kr + 32'd1;
                                woff <= woff + k_wgap;
                            end
                        end else begin
                            ks <= ks + 32'd1;
                            woff <= woff + 32'd1;
                        end
                    end
                    if (tile_end) begin
                        j <= 32'd0; cl <= 32'd0; kr <= 32'd0; ks <= 32'd0; woff <= 32'd0;
                        cofs <= 32'd0;
                        fl <= 32'd0;
                        if (lane_adv) begin
                            // next pixel tile: its first weight tile of the pass
                            pt <= pt + 32'd1;
                            p0 <= p0 + R;
                            tip <= 32'd0;
                            g_g <= g_ps; g_ktc <= ktc_ps; g_kg0 <= kg0_ps; g_cb <= cb_ps;
                            wptr <= w_rbase; obase <= 32'd0;
                        end else begin
                            // next weight tile (or past the pass's last one)
                            tip <= tip + 32'd1;
                            wptr <= wptr + (desc[D_TILE_W] >> W_ROW_LB);
                            obase <= obase + (last_kt ? desc[D_LAST_PQ] : desc[D_C_PQ]);
                            if (last_kt) begin
                                g_g <= g_g + 32'd1; g_ktc <= 32'd0;
                                g_kg0 <= g_kg0 + desc[D_KG];
                                g_cb <= g_cb + desc[D_CG_HW];
                            end else begin
                                g_ktc <= g_ktc + C;
                            end
                        end
                    end
                end
                S_FLUSH: fl <= fl + 32'd1;
                S_WB_W: if (dma_done & ((desc[D_OUT_RUN] == 32'd0)
                                        | (wb_o + desc[D_O_PITCH] >= obase))) begin
                    // next pass starts after the last tile of this one (its last run written)
                    t_ps <= t_ps + np;
                    tw_ps <= tw_ps + lw_len;
                    slot <= slot ^ pf;  // prefetch: the next pass computes on the other slot
                    g_ps <= g_g; ktc_ps <= g_ktc; kg0_ps <= g_kg0; cb_ps <= g_cb;
                end
                default: begin end
            endcase
        end
    end
endmodule
/* verilator lint_on UNUSEDSIGNAL */
`default_nettype wire
