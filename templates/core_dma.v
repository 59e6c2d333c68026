// autochip core DMA: AXI4 master with a BUS-byte data bus (AxSIZE = LB = log2(BUS)), INCR
// bursts of whole bus words, at most 256 beats and never across a 4 KB boundary, one burst in
// flight. A command moves cmd_len bytes from / to byte address cmd_addr (any alignment): it
// covers the bus words from the one holding cmd_addr to the one holding its last byte, and the
// byte strobes mark the bytes inside [cmd_addr, cmd_addr + cmd_len).
//   read  (cmd_write = 0): bus word i of the command (i counting from 0 at the word holding
//                          cmd_addr) appears on rd_valid/rd_data/rd_word with rd_strb;
//                          rready is always high.
//   write (cmd_write = 1): word i is read from the source with src_re/src_word and taken from
//                          src_data one cycle later (a registered RAM read port that holds);
//                          WSTRB masks the bytes outside the command.
// The source and destination buffers hold DRAM bytes at the same offset within a bus word as
// DRAM does, so no byte lane is rotated. done pulses for one cycle after the last R beat / B
// response. Per burst of L beats this costs L cycles plus the address and response handshakes
// (autochip.predictor.core_model.dma_cycles).
`default_nettype none
module core_dma #(
    parameter integer BUS = 4,   // data bus bytes: 4 .. 64, a power of two
    parameter integer LB  = 2    // log2(BUS)
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             cmd_valid,
    input  wire             cmd_write,
    input  wire [31:0]      cmd_addr,
    input  wire [31:0]      cmd_len,
    output wire             idle,
    output reg              done,
    output reg              rd_valid,
    output reg  [8*BUS-1:0] rd_data,
    output reg  [BUS-1:0]   rd_strb,
    output reg  [31:0]      rd_word,
    output wire             src_re,
    output wire [31:0]      src_word,
    input  wire [8*BUS-1:0] src_data,
    // AXI4 master
    output wire [31:0]      m_axi_awaddr,
    output wire [7:0]       m_axi_awlen,
    output wire [2:0]       m_axi_awsize,
    output wire [1:0]       m_axi_awburst,
    output wire [0:0]       m_axi_awid,
    output wire             m_axi_awlock,
    output wire [3:0]       m_axi_awcache,
    output wire [2:0]       m_axi_awprot,
    output wire             m_axi_awvalid,
    input  wire             m_axi_awready,
    output wire [8*BUS-1:0] m_axi_wdata,
    output wire [BUS-1:0]   m_axi_wstrb,
    output wire             m_axi_wlast,
    output wire             m_axi_wvalid,
    input  wire             m_axi_wready,
    input  wire [0:0]       m_axi_bid,
    input  wire [1:0]       m_axi_bresp,
    input  wire             m_axi_bvalid,
    output wire             m_axi_bready,
    output wire [31:0]      m_axi_araddr,
    output wire [7:0]       m_axi_arlen,
    output wire [2:0]       m_axi_arsize,
    output wire [1:0]       m_axi_arburst,
    output wire [0:0]       m_axi_arid,
    output wire             m_axi_arlock,
    output wire [3:0]       m_axi_arcache,
    output wire [2:0]       m_axi_arprot,
    output wire             m_axi_arvalid,
    input  wire             m_axi_arready,
    input  wire [0:0]       m_axi_rid,
    input  wire [8*BUS-1:0] m_axi_rdata,
    input  wire [1:0]       m_axi_rresp,
    input  wire             m_axi_rlast,
    input  wire             m_axi_rvalid,
    output wire             m_axi_rready
);
    localparam [2:0] S_IDLE = 3'd0, S_AR = 3'd1, S_R = 3'd2, S_AW = 3'd3, S_W = 3'd4,
                     S_B = 3'd5;
    localparam [2:0] SIZE = LB[2:0];

    reg  [2:0]    state;
    reg  [31:0]   addr;     // byte address of the next bus word (aligned)
    reg  [31:0]   left;     // bus words not yet transferred, this burst included
    reg  [31:0]   index;    // word index of the next beat within the command
    reg  [31:0]   nlast;    // word index of the command's last word
    reg  [LB-1:0] first_b;  // first valid byte in word 0
    reg  [LB-1:0] last_b;   // last valid byte in the last word
    reg  [8:0]    beats;    // beats left in the write burst

    // burst length: up to the next 4 KB boundary, at most 256 beats, at most what is left
    wire [31:0] cmd_end   = cmd_addr + cmd_len - 32'd1;
    wire [31:0] cmd_words = (cmd_end >> LB) - (cmd_addr >> LB) + 32'd1;
    wire [12:0] edge_b    = 13'd4096 - {1'b0, addr[11:0]};
    wire [31:0] to_edge   = {19'd0, edge_b} >> LB;
    wire [31:0] cap       = (to_edge < 32'd256) ? to_edge : 32'd256;
    wire [8:0]  blen      = (left < cap) ? left[8:0] : cap[8:0];
    wire [7:0]  alen      = blen[7:0] - 8'd1;
    wire        wfire     = (state == S_W) & m_axi_wready;

    // byte strobes of word `i`
    function automatic [BUS-1:0] strobes(input [31:0] i);
        integer b;
        begin
            for (b = 0; b < BUS; b = b + 1) begin
                strobes[b] = !((i == 32'd0) && (b < first_b)) && !((i == nlast) && (b > last_b));
            end
        end
    endfunction

    assign idle          = (state == S_IDLE);
    assign m_axi_awaddr  = addr;
    assign m_axi_awlen   = alen;
    assign m_axi_awsize  = SIZE;
    assign m_axi_awburst = 2'b01;
    assign m_axi_awid    = 1'b0;
    assign m_axi_awlock  = 1'b0;
    assign m_axi_awcache = 4'd0;
    assign m_axi_awprot  = 3'd0;
    assign m_axi_awvalid = (state == S_AW);
    assign m_axi_wdata   = src_data;
    assign m_axi_wstrb   = strobes(index);
    assign m_axi_wlast   = (beats == 9'd1);
    assign m_axi_wvalid  = (state == S_W);
    assign m_axi_bready  = (state == S_B);
    assign m_axi_araddr  = addr;
    assign m_axi_arlen   = alen;
    assign m_axi_arsize  = SIZE;
    assign m_axi_arburst = 2'b01;
    assign m_axi_arid    = 1'b0;
    assign m_axi_arlock  = 1'b0;
    assign m_axi_arcache = 4'd0;
    assign m_axi_arprot  = 3'd0;
    assign m_axi_arvalid = (state == S_AR);
    assign m_axi_rready  = (state == S_R);
    assign src_re        = (state == S_AW) | wfire;
    assign src_word      = wfire ? index + 32'd1 : index;

    wire unused_ok = &{1'b0, m_axi_bid, m_axi_bresp, m_axi_rid, m_axi_rresp};

    always @(posedge clk) begin
        if (rst) begin
            state    <= S_IDLE;
            addr     <= 32'd0;
            left     <= 32'd0;
            index    <= 32'd0;
            nlast    <= 32'd0;
            first_b  <= {LB{1'b0}};
            last_b   <= {LB{1'b0}};
            beats    <= 9'd0;
            done     <= 1'b0;
            rd_valid <= 1'b0;
            rd_data  <= {8*BUS{1'b0}};
            rd_strb  <= {BUS{1'b0}};
            rd_word  <= 32'd0;
        end else begin
            done     <= 1'b0;
            rd_valid <= 1'b0;
            case (state)
                S_IDLE: begin
                    if (cmd_valid) begin
                        addr    <= {cmd_addr[31:LB], {LB{1'b0}}};
                        left    <= cmd_words;
                        index   <= 32'd0;
                        nlast   <= cmd_words - 32'd1;
                        first_b <= cmd_addr[LB-1:0];
                        last_b  <= cmd_end[LB-1:0];
                        if (cmd_len == 32'd0) begin
                            done <= 1'b1;
                        end else begin
                            state <= cmd_write ? S_AW : S_AR;
                        end
                    end
                end
                S_AR: begin
                    if (m_axi_arready) begin
                        state <= S_R;
                    end
                end
                S_R: begin
                    if (m_axi_rvalid) begin
                        rd_valid <= 1'b1;
                        rd_data  <= m_axi_rdata;
                        rd_strb  <= strobes(index);
                        rd_word  <= index;
                        index    <= index + 32'd1;
                        addr     <= addr + BUS;
                        left     <= left - 32'd1;
                        if (m_axi_rlast) begin
                            if (left == 32'd1) begin
                                state <= S_IDLE;
                                done  <= 1'b1;
                            end else begin
                                state <= S_AR;
                            end
                        end
                    end
                end
                S_AW: begin
                    if (m_axi_awready) begin
                        state <= S_W;
                        beats <= blen;
                    end
                end
                S_W: begin
                    if (m_axi_wready) begin
                        index <= index + 32'd1;
                        addr  <= addr + BUS;
                        left  <= left - 32'd1;
                        beats <= beats - 9'd1;
                        if (beats == 9'd1) begin
                            state <= S_B;
                        end
                    end
                end
                S_B: begin
                    if (m_axi_bvalid) begin
                        if (left == 32'd0) begin
                            state <= S_IDLE;
                            done  <= 1'b1;
                        end else begin
                            state <= S_AW;
                        end
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
