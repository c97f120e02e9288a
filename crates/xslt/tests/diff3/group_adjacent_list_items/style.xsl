<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Wrap adjacent list items into a list, copy everything else. -->
  <xsl:template match="node() | @*"><xsl:copy><xsl:apply-templates select="node() | @*"/></xsl:copy></xsl:template>
  <xsl:template match="body">
    <xsl:copy>
      <xsl:for-each-group select="*" group-adjacent="name() = 'ul-item'">
        <xsl:choose>
          <xsl:when test="current-grouping-key()">
            <ul><xsl:apply-templates select="current-group()"/></ul>
          </xsl:when>
          <xsl:otherwise><xsl:apply-templates select="current-group()"/></xsl:otherwise>
        </xsl:choose>
      </xsl:for-each-group>
    </xsl:copy>
  </xsl:template>
  <xsl:template match="ul-item"><li><xsl:apply-templates/></li></xsl:template>
</xsl:stylesheet>
