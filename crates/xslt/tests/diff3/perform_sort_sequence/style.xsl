<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:array="http://www.w3.org/2005/xpath-functions/array" exclude-result-prefixes="#all">
  <!-- xsl:perform-sort on nodes and on atomic values (XSLT 2.0). -->
  <xsl:template match="/antraege">
    <r>
      <a>
        <xsl:perform-sort select="antrag/name">
          <xsl:sort select="."/>
        </xsl:perform-sort>
      </a>
      <b>
        <xsl:value-of separator=" ">
          <xsl:perform-sort select="antrag/xs:decimal(@betrag)">
            <xsl:sort select="." order="descending"/>
          </xsl:perform-sort>
        </xsl:value-of>
      </b>
    </r>
  </xsl:template>
</xsl:stylesheet>
